"""How a config does on a camera it never saw: leave-one-team-out on the shared teams, recipe by recipe.

    python benchmarks/generalisation.py --config best.json --data ../shared/cones_dataset --data ../shared/cones_more \
        --seeds 2 --jobs 2
    python benchmarks/generalisation.py --config best.json --data ../shared/cones_dataset --recipes today,ship

For every team of the export, trains the config on the other teams with each recipe (``objectives.recipe``:
epochs, augmentation, weight averaging) and tests on the held-out team; every trained model is scored under
each inference choice (argmax + parabola or + window mean, with and without flip averaging). Prints per team
mean px, PCK@1/2/3 and the share of points more than 5 px off, the mean over teams, the spread over seeds,
and the error by how large the cone is framed; beside it the original study's U-Net hand design
(unet8-softmax-bn, its own recipe: Adam 1e-3, batch 64, heatmap MSE) trained the same way.

Each run (config, recipe's training fields, data, team, seed) is cached as JSON under the data cache
(``$KEYPOINT_NAS_CACHE/generalisation``, ``objectives/heldout_runs.py``; retrain reads them to choose ship mode's
epoch budget), so adding a recipe or a seed trains only what is new. ``--jobs N``
trains N runs at once, one torch thread each. ``--json FILE`` writes the summary.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from cli.args import add_data_argument, doc_parser, positive_int
from cones.splits import split
from cones.types import KEYPOINT_NAMES, ConeSet
from objectives.heatmaps import DECODERS, inference_name
from objectives.heldout_runs import read_run, run_path, write_run
from objectives.recipe import INFERENCE_VARIANTS, RECIPES, Recipe
from objectives.train import predict_heatmaps, train
from search_space.baselines import hand_designs
from search_space.config import Config
from search_space.registry import create_model, memory_format

REFERENCE = "unet8-softmax-bn"
# The shared data's cameras by framing (../shared/DATA.md): three teams that frame cones alike, two that frame
# them larger. Each group's mean is printed beside the mean over all teams; teams not in the data are left out.
DEFAULT_GROUPS = "look-alike=amz,pwrrt,tuwr;large-framing=eikona,so"
GROSS_PX = 5.0
SPAN_BINS = (0, 42, 46, 50, 54, 1000)  # the 7 points' height in the crop, px


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.add_argument("--config", required=True, help="export.py's JSON (or a bare config object)")
    add_data_argument(parser, "Supervisely export or COCO .json (2+ teams in all)", required=True)
    parser.add_argument("--recipes", default="today,ship",
                        help=f"comma-separated recipe names (default today,ship); known: {', '.join(RECIPES)}")
    parser.add_argument("--seeds", type=positive_int, default=1, help="training seeds 0..N-1 (default 1)")
    parser.add_argument("--jobs", type=positive_int, default=1, help="runs at once, one torch thread each (default 1)")
    parser.add_argument("--no-reference", action="store_true", help=f"leave out the hand design {REFERENCE}")
    parser.add_argument("--groups", default=DEFAULT_GROUPS, type=parse_groups,
                        help=f"teams whose mean is printed apart, NAME=TEAM,TEAM;NAME=... (default {DEFAULT_GROUPS})")
    parser.add_argument("--json", metavar="FILE", help="write the summary here")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [name for name in args.recipes.split(",") if name not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe {unknown[0]!r}; known: {', '.join(RECIPES)}")
    cfg = read_config(args.config)

    from cones.load import describe_sources, load_data  # the loader prints the counts line
    try:
        data = load_data(args.data)
        data_id = data.fingerprint()
    except ValueError as error:
        raise SystemExit(f"generalisation: {error}") from None
    if len(set(data.teams)) < 2:
        raise SystemExit(f"generalisation: {describe_sources(args.data)} holds one team ({data.teams[0]}); "
                         "leave-one-team-out needs 2+")

    runs = [("config", cfg, name, RECIPES[name]) for name in args.recipes.split(",")]
    teacher_rows = train_teachers(data, data_id, runs, jobs=args.jobs)
    if not args.no_reference:
        runs.append((REFERENCE, hand_designs()[REFERENCE], "today", RECIPES["today"]))
    summary = benchmark(data, data_id, runs, seeds=range(args.seeds), jobs=args.jobs)
    summary["rows"] += teacher_rows
    summary["latency_ms"] = inference_latency(cfg)
    summary["groups"] = {name: [t for t in teams if t in summary["teams"]] for name, teams in args.groups.items()}
    print(format_summary(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def parse_groups(text: str) -> dict[str, list[str]]:
    """``look-alike=amz,pwrrt;large=so`` -> {"look-alike": ["amz", "pwrrt"], "large": ["so"]}."""
    groups = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, sep, teams = item.partition("=")
        if not sep or not name.strip() or not teams.strip():
            raise argparse.ArgumentTypeError(f"--groups: {item!r} is not NAME=TEAM,TEAM")
        groups[name.strip()] = [team.strip() for team in teams.split(",") if team.strip()]
    return groups


def group_means(row: dict, groups: dict[str, list[str]]) -> dict[str, float]:
    """The mean px over each group's teams (those of the row), by group name."""
    return {name: float(np.mean([row["teams"][t]["mean_px"] for t in teams]))
            for name, teams in groups.items() if teams and all(t in row["teams"] for t in teams)}


def read_config(path: str) -> Config:
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"generalisation: --config {path}: {error}") from None
    try:
        return Config.from_dict(record.get("config", record))
    except (TypeError, ValueError, AttributeError) as error:
        raise SystemExit(f"generalisation: --config {path}: {error}") from None


def benchmark(data: ConeSet, data_id: str, runs: list[tuple[str, Config, str, Recipe]], seeds, jobs: int = 1,
              log=print, need_weights: bool = False, teams: list[str] | None = None) -> dict:
    """runs: (model label, config, recipe name, recipe). Returns {"rows": [...], "folds": [...]}.

    need_weights: retrain cached runs whose weights were not kept (runs from before they were). teams: hold out
    only these (default: every team of ``data``)."""
    teams = sorted(set(data.teams)) if teams is None else sorted(teams)
    todo, folds = [], []
    for label, cfg, recipe_name, recipe in runs:
        for seed in seeds:
            for team in teams:
                path = run_path(cfg, recipe, data_id, team, seed)
                key = dict(model=label, recipe=recipe_name, team=team, seed=seed, path=path)
                cached = read_run(path)
                if cached is not None and need_weights and not path.with_suffix(".pt").is_file():
                    cached = None
                if cached is not None:
                    if "data_id" not in cached:  # written before runs carried their key
                        cached = write_run(path, cfg, recipe, data_id, team, seed, cached)
                    folds.append({**cached, **key})
                else:
                    todo.append((key, cfg, recipe))
    log(f"{len(folds)} runs cached, {len(todo)} to train ({len(teams)} teams: {', '.join(teams)})")
    started = time.perf_counter()
    if jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = [(key, cfg, recipe, pool.submit(run_fold, data, cfg, recipe, key["team"], key["seed"], 1,
                                                      teacher_weights(cfg, recipe, data_id, key["team"])))
                       for key, cfg, recipe in todo]
            for done, (key, cfg, recipe, future) in enumerate(futures, 1):
                folds.append(_store(key, cfg, recipe, data_id, future.result(), log, done, len(todo), started))
    else:
        for done, (key, cfg, recipe) in enumerate(todo, 1):
            result = run_fold(data, cfg, recipe, key["team"], key["seed"], None,
                              teacher_weights(cfg, recipe, data_id, key["team"]))
            folds.append(_store(key, cfg, recipe, data_id, result, log, done, len(todo), started))
    for fold in folds:
        fold.pop("path", None)
    return {"teams": teams, "rows": summarise(folds, runs, teams), "folds": folds}


def _store(key: dict, cfg: Config, recipe: Recipe, data_id: str, result: dict, log, done: int, total: int,
           started: float) -> dict:
    state = result.pop("_state", None)
    if state is not None:  # the trained weights, for adapting a model shipped without this team
        key["path"].parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, key["path"].with_suffix(".pt"))
    record = write_run(key["path"], cfg, recipe, data_id, key["team"], key["seed"], result)
    elapsed = time.perf_counter() - started
    best = result["scores"]["parabola"]["mean_px"]
    log(f"[{done}/{total}] {key['model']} {key['recipe']} held out {key['team']} seed {key['seed']}: "
        f"{best:.3f} px ({result['train_seconds']:.0f} s; {elapsed / done * (total - done) / 60:.0f} min left)")
    return {**record, **key}


def train_teachers(data: ConeSet, data_id: str, runs: list[tuple[str, Config, str, Recipe]], jobs: int = 1,
                   log=print) -> list[dict]:
    """Train (or find cached) the teachers of the distilling recipes in ``runs``: leave-one-team-out on the same
    folds, seed 0, weights kept. Returns the teachers' own rows, to print beside their students."""
    teachers = {recipe.teacher(cfg) for _, cfg, _, recipe in runs if recipe.teacher(cfg) is not None}
    if not teachers:
        return []
    teacher_runs = [(f"teacher w{t_cfg.width}", t_cfg, _recipe_name(t_recipe), t_recipe) for t_cfg, t_recipe in teachers]
    return benchmark(data, data_id, teacher_runs, seeds=range(1), jobs=jobs, log=log, need_weights=True)["rows"]


def teacher_weights(cfg: Config, recipe: Recipe, data_id: str, team: str) -> Path | None:
    """The cached weights of the teacher a distilling recipe learns from on this fold (seed 0)."""
    teacher = recipe.teacher(cfg)
    if teacher is None:
        return None
    path = run_path(*teacher, data_id, team, 0).with_suffix(".pt")
    if not path.is_file():
        raise RuntimeError(f"no cached teacher weights at {path}; the benchmark trains teachers first")
    return path


def _recipe_name(recipe: Recipe) -> str:
    return next((name for name, known in RECIPES.items() if known == recipe), "custom")


def run_fold(data: ConeSet, cfg: Config, recipe: Recipe, team: str, seed: int, threads: int | None,
             teacher: Path | None = None) -> dict:
    """Train on every team but ``team``, test on ``team``; scores under every inference choice."""
    train_set, test_set = split(data, val_teams=[team])
    extra = {}
    if teacher is not None:
        teacher_cfg = recipe.teacher(cfg)[0]
        model = create_model(teacher_cfg).to(memory_format=memory_format(teacher_cfg))
        model.load_state_dict(torch.load(teacher, weights_only=True))
        extra["teacher"] = model.eval()
    result = train(cfg, train_set, test_set, recipe.epochs, seed=seed, threads=threads, **recipe.train_kwargs(),
                   **extra)
    if result.status == "diverged":
        return {"status": "diverged", "reason": result.reason, "history": result.history,
                "train_seconds": result.train_seconds,
                "scores": {inference_name(f, d): fold_scores(None, test_set) for f, d in INFERENCE_VARIANTS}}
    truth = test_set.keypoints.double()
    scores = {}
    for flip in (False, True):
        heatmaps = predict_heatmaps(result.model, test_set.images, memory_format(cfg), flip=flip)
        for decoder, decode in DECODERS.items():
            error = torch.linalg.vector_norm(decode(heatmaps).double() - truth, dim=-1)  # (N, 7)
            scores[inference_name(flip, decoder)] = fold_scores(error, test_set)
    state = {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}
    return {"status": "ok", "history": result.history, "train_seconds": round(result.train_seconds, 1),
            "train_crops": len(train_set), "test_crops": len(test_set), "scores": scores, "_state": state}


def spans(data: ConeSet) -> np.ndarray:
    """Height of the 7 points in the crop, px (how large the crop generator frames the cone)."""
    y = data.keypoints[..., 1]
    return (y.max(dim=1).values - y.min(dim=1).values).numpy()


def fold_scores(error: torch.Tensor | None, test_set: ConeSet) -> dict:
    """error (N, 7) px -> mean, median, PCK@1/2/3, share over 5 px, per keypoint, per span bin."""
    if error is None or not torch.isfinite(error).all():
        return {"mean_px": math.inf, "median_px": math.inf, "pck1": 0.0, "pck2": 0.0, "pck3": 0.0, "gross": 1.0,
                "per_keypoint_px": [math.inf] * len(KEYPOINT_NAMES), "by_span": {}}
    flat = error.flatten()
    per_crop = error.mean(dim=1).numpy()
    span = spans(test_set)
    by_span = {}
    for low, high in zip(SPAN_BINS[:-1], SPAN_BINS[1:]):
        inside = (span >= low) & (span < high)
        if inside.any():
            by_span[f"{low}-{high}"] = [int(inside.sum()), float(per_crop[inside].mean())]
    return {"mean_px": flat.mean().item(), "median_px": flat.median().item(),
            "pck1": (flat <= 1).double().mean().item(), "pck2": (flat <= 2).double().mean().item(),
            "pck3": (flat <= 3).double().mean().item(), "gross": (flat > GROSS_PX).double().mean().item(),
            "per_keypoint_px": error.mean(dim=0).tolist(), "by_span": by_span}


def summarise(folds: list[dict], runs, teams: list[str]) -> list[dict]:
    """One row per (model, recipe, inference): per-team figures averaged over seeds, the mean over teams,
    and the spread of that mean over seeds."""
    rows = []
    for label, _, recipe_name, _ in runs:
        mine = [f for f in folds if f["model"] == label and f["recipe"] == recipe_name]
        seeds = sorted({f["seed"] for f in mine})
        for variant in mine[0]["scores"] if mine else ():
            per_team = {}
            for team in teams:
                scores = [f["scores"][variant] for f in mine if f["team"] == team]
                per_team[team] = {k: float(np.mean([s[k] for s in scores]))
                                  for k in ("mean_px", "median_px", "pck1", "pck2", "pck3", "gross")}
            per_seed = [np.mean([f["scores"][variant]["mean_px"] for f in mine if f["seed"] == s]) for s in seeds]
            rows.append({"model": label, "recipe": recipe_name, "inference": variant, "seeds": len(seeds),
                         "teams": per_team,
                         "mean": {k: float(np.mean([per_team[t][k] for t in teams]))
                                  for k in ("mean_px", "median_px", "pck1", "pck2", "pck3", "gross")},
                         "seed_means": [float(v) for v in per_seed],
                         "by_span": _span_table(mine, variant)})
    return rows


def _span_table(folds: list[dict], variant: str) -> dict:
    table: dict[str, list[float]] = {}
    for fold in folds:
        for name, (count, mean) in fold["scores"][variant]["by_span"].items():
            n, total = table.get(name, [0, 0.0])
            table[name] = [n + count, total + count * mean]
    return {name: [n, total / n] for name, (n, total) in table.items() if n}


def inference_latency(cfg: Config, repeats: int = 100) -> dict:
    """ONNX Runtime ms per crop (median, one thread) of ``cfg`` under each inference choice, batch 1 and 32.
    The weights do not change the time, so the model is exported untrained."""
    import tempfile

    from benchmarks.inference import latency
    from deploy.exported import ExportedModel
    from deploy.onnx_export import export_onnx
    from search_space.registry import create_model

    times = {}
    with tempfile.TemporaryDirectory() as folder:
        for flip, decoder in INFERENCE_VARIANTS:
            path = Path(folder) / f"{inference_name(flip, decoder)}.onnx"
            torch.manual_seed(0)
            export_onnx(create_model(cfg), cfg, path, flip_test=flip, decoder=decoder)
            model = ExportedModel(path, threads=1)
            times[inference_name(flip, decoder)] = {batch: latency(model, batch, repeats, 10)[0] for batch in (1, 32)}
    return times


def format_summary(summary: dict) -> str:
    teams = summary["teams"]
    lines = [f"{'model':<17} {'recipe':<13} {'inference':<15} {'team':<6} {'mean px':>8} {'PCK@1':>6} "
             f"{'PCK@2':>6} {'PCK@3':>6} {'>5 px':>6}"]
    for row in summary["rows"]:
        head = f"{row['model']:<17} {row['recipe']:<13} {row['inference']:<15}"
        for team in [*teams, "mean"]:
            s = row["mean"] if team == "mean" else row["teams"][team]
            lines.append(f"{head} {team:<6} {s['mean_px']:>8.3f} {s['pck1']:>6.1%} {s['pck2']:>6.1%} "
                         f"{s['pck3']:>6.1%} {s['gross']:>6.2%}")
            head = " " * len(head)
        groups = group_means(row, summary.get("groups", {}))
        if groups:
            lines.append(f"{' ' * len(head)} mean px by group: " + "; ".join(
                f"{name} ({', '.join(summary['groups'][name])}) {mean:.3f}" for name, mean in groups.items()))
        seeds = row["seed_means"]
        spread = f"{min(seeds):.3f} - {max(seeds):.3f}" if len(seeds) > 1 else "one seed"
        spans_text = "  ".join(f"{name}: {mean:.2f} (n={n})" for name, (n, mean) in row["by_span"].items())
        lines.append(f"{' ' * len(head)} mean over teams by seed: {spread}; by cone height px: {spans_text}")
    if "latency_ms" in summary:
        lines.append("ONNX Runtime latency of the config, 1 thread, median ms per crop at batch 1 / 32: " + "; ".join(
            f"{name} {t[1]:.3f} / {t[32]:.3f}" for name, t in summary["latency_ms"].items()))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
