r"""float32 against int8 under the same cap: each config retrained, exported and measured through ONNX Runtime on
a team it never saw.

    python benchmarks/int8_vs_float.py --float best32.json --int8 best8.json --data ../shared/cones_dataset
    python benchmarks/int8_vs_float.py --float best32.json --int8 best8.json --data ../shared/cones_dataset \
        --teams all --seeds 2 --json int8_vs_float.json
    python benchmarks/int8_vs_float.py --float benchmarks/configs/real200-best.json \
        --int8 benchmarks/configs/real200-best.json --data ../shared/cones_dataset

The third command compares one architecture in both formats: what int8 alone costs it.

``--float`` and ``--int8`` take what ``runners/export.py`` writes (or a bare config object, as retrain reads
them): typically the best trial of a float32 study and of an int8 study under the same cap (``--max-kb``, 80 by
default; each config must fit in its own format). For every held-out team (``--val-teams``, tuwr by default;
``--teams all`` holds out every team in turn) and seed, each config trains on the other teams with the recipe
(``--recipe``, retrain's ship recipe by default, for ``--epochs``, last epoch's weights: nothing is chosen on
the held-out team). The float32 config is then exported as it is; the int8 config is calibrated and fine-tuned
quantization-aware for ``--qat-epochs`` (``shipping.quantize``, as ``runners/retrain.py --weights int8`` does,
keeping the last fine-tuning epoch) and exported as an int8 QDQ model.

Prints per model: the ONNX file's weight bytes and format, mean px and PCK@2 on the held-out team measured through
ONNX Runtime (``deploy.exported.ExportedModel``), the float training's own held-out error in torch (before any
quantization: for the int8 row, what int8 costs), and ONNX Runtime's median ms per crop at batch 1 and 32 on one
thread (``benchmarks/inference.py``'s timing). Latency does not depend on the weights; it is timed once per model
and is only as quiet as the machine.

The float trainings are the leave-one-team-out runs ``benchmarks/generalisation.py`` caches
(``objectives/heldout_runs.py``, weights kept): a run it or an earlier call of this benchmark already made is
read, not trained again. ``--json FILE`` writes every fold and the summary; ``--out DIR`` keeps the ONNX files.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.generalisation import run_fold
from benchmarks.inference import BATCHES, latency
from cli.args import add_data_argument, doc_parser, non_negative_int, positive_float, positive_int
from cli.exits import UserError, run
from cli.paths import check_out_dir, input_path
from cones.splits import split
from cones.types import ConeSet
from deploy.exported import ExportedModel
from deploy.onnx_export import export_onnx
from objectives.heldout_runs import read_run, run_path, write_run
from objectives.metrics import keypoint_metrics
from objectives.recipe import RECIPES, Recipe
from search_space.cap import fits, max_bytes
from search_space.config import BYTES_PER_KB, Config, DEFAULT_MAX_KB
from search_space.registry import create_model
from search_space.size import measure
from shipping.agreement import check_agreement
from shipping.quantize import quantize
from shipping.record import DEFAULT_QAT_EPOCHS, read_record

DEFAULT_TEAM = "tuwr"  # the search's own held-out team on the shared data
SCORES = ("mean_px", "median_px", "pck1", "pck2", "pck3")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cap = max_bytes(args.max_kb)
    models = []
    for weights, option, path in (("float32", "--float", args.float), ("int8", "--int8", args.int8)):
        cfg = Config.from_dict(read_record(input_path(path, option, kind="file"))["config"])
        fit = fits(cfg, cap, weights)
        if not fit.ok:
            raise UserError(f"{option} {path}: {fit.error}; compare models under one cap (export smaller trials with "
                            "runners/export.py --max-kb, or raise --max-kb)")
        models.append((weights, Path(path).name, cfg))
    recipe = RECIPES[args.recipe].replace(**({"epochs": args.epochs} if args.epochs else {}))
    if args.out:
        check_out_dir(args.out, force=args.force, inputs=list(args.data))

    from cones.load import load_data  # the loader prints the counts line
    try:
        data = load_data(args.data)
    except ValueError as error:
        raise UserError(str(error)) from None
    teams = held_out_teams(data, args.val_teams, args.teams)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.out) if args.out else Path(scratch)
        summary = compare(data, models, teams, range(args.seeds), recipe, qat_epochs=args.qat_epochs, folder=folder,
                          cap=cap, threads=args.threads, repeats=args.repeats, keep_files=bool(args.out))
    summary.update(recipe=args.recipe, recipe_fields=recipe.to_dict(), max_bytes=cap, qat_epochs=args.qat_epochs,
                   data=[str(p) for p in args.data], command="python benchmarks/int8_vs_float.py " + " ".join(
                       sys.argv[1:] if argv is None else argv))
    print(format_summary(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.add_argument("--float", required=True, metavar="CONFIG.json", help="the float32 model's config "
                        "(runners/export.py's JSON, or a bare config object)")
    parser.add_argument("--int8", required=True, metavar="CONFIG.json", help="the int8 model's config (the same kinds "
                        "of file; the same config as --float compares the two formats of one architecture)")
    add_data_argument(parser, "Supervisely export with 2 or more teams", required=True)
    parser.add_argument("--val-teams", nargs="*", metavar="TEAM",
                        help=f"teams held out, each in turn (space- or comma-separated; default {DEFAULT_TEAM})")
    parser.add_argument("--teams", choices=["all"], help="all: hold out every team in turn (leave-one-team-out)")
    parser.add_argument("--max-kb", type=positive_float, default=DEFAULT_MAX_KB,
                        help=f"the cap both models must fit, each in its own format (default {DEFAULT_MAX_KB})")
    parser.add_argument("--recipe", default="ship", metavar="NAME",
                        choices=sorted(name for name, recipe in RECIPES.items() if recipe.teacher_width is None),
                        help="training and inference recipe (objectives/recipe.py; default ship, what retrain "
                             "ships; distilling recipes are not offered)")
    parser.add_argument("--epochs", type=positive_int, help="epochs of float training (default: the recipe's)")
    parser.add_argument("--qat-epochs", type=non_negative_int, default=DEFAULT_QAT_EPOCHS,
                        help=f"int8: epochs of quantization-aware fine-tuning after calibration (default "
                             f"{DEFAULT_QAT_EPOCHS}, retrain's; 0: post-training quantization only)")
    parser.add_argument("--seeds", type=positive_int, default=1, help="training seeds 0..N-1, averaged (default 1)")
    parser.add_argument("--threads", type=positive_int, help="torch threads for training (default: torch's choice)")
    parser.add_argument("--repeats", type=positive_int, default=100, help="timed ONNX Runtime runs per batch size "
                                                                         "(default 100, after 10 warm-up runs)")
    parser.add_argument("--out", metavar="DIR", help="keep the exported models here (<format>-<team>-s<seed>.onnx)")
    parser.add_argument("--force", action="store_true", help="write into an --out that holds files")
    parser.add_argument("--json", metavar="FILE", help="write the folds and the summary here")
    return parser


def parse_args(argv: list[str] | None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.teams and args.val_teams is not None:
        parser.error("--teams all and --val-teams both choose the held-out teams; give one")
    return args


def held_out_teams(data: ConeSet, val_teams: list[str] | None, teams: str | None) -> list[str]:
    """The teams held out one at a time: every team with ``--teams all``, else ``--val-teams`` (default tuwr)."""
    known = sorted(set(data.teams))
    if len(known) < 2:
        raise UserError(f"--data holds one team ({known[0]}); holding a team out needs 2 or more")
    if teams == "all":
        return known
    picked = [team for item in (val_teams or [DEFAULT_TEAM]) for team in item.split(",") if team]
    unknown = [team for team in picked if team not in known]
    if unknown or not picked:
        raise UserError(f"--val-teams {' '.join(unknown) or '(none)'}: not a team of --data; its teams: "
                        f"{', '.join(known)}")
    return list(dict.fromkeys(picked))


def compare(data: ConeSet, models: list[tuple[str, str, Config]], teams: list[str], seeds, recipe: Recipe, *,
            qat_epochs: int, folder: Path, cap: int, threads: int | None = None, repeats: int = 100,
            keep_files: bool = True, log=print) -> dict:
    """models: (weights format, label, config). Every model on every held-out team and seed, then its latency.
    Returns {"teams", "rows": one per model, "folds": one per model, team and seed}."""
    data_id = data.fingerprint()
    folds = []
    for weights, label, cfg in models:
        for seed in seeds:
            for team in teams:
                path = folder / f"{weights}-{team}-s{seed}.onnx"
                fold = run_model(data, data_id, cfg, weights, recipe, team, seed, qat_epochs, path, cap, threads, log)
                folds.append({"model": weights, "label": label, "team": team, "seed": seed, **fold})
        mine = [f for f in folds if f["model"] == weights]
        timed = next((f for f in mine if f["status"] == "ok"), None)
        latencies = model_latency(Path(timed["onnx_file"]), repeats) if timed else None
        for fold in mine:
            fold["latency_ms"] = latencies
            if not keep_files:  # the scratch folder goes when the benchmark ends
                fold.pop("onnx_file", None)
    return {"teams": list(teams), "rows": summarise(folds, models, teams), "folds": folds}


def run_model(data: ConeSet, data_id: str, cfg: Config, weights: str, recipe: Recipe, team: str, seed: int,
              qat_epochs: int, path: Path, cap: int, threads: int | None, log=print) -> dict:
    """One fold of one model: float training (cached), int8 calibration and fine-tuning when ``weights`` is int8,
    the export, and the held-out team's figures through ONNX Runtime."""
    train_set, test_set = split(data, val_teams=[team])
    model, float_run = float_model(data, data_id, cfg, recipe, team, seed, threads, log)
    figures = {"weights": weights, "config": cfg.to_dict(),
               "float_torch_mean_px": float_run["scores"][recipe.inference]["mean_px"], "test_crops": len(test_set)}
    if model is None:
        return {**figures, "status": "diverged", "reason": f"float training diverged ({float_run.get('reason')})"}
    shipped = model
    if weights == "int8":
        started = time.perf_counter()
        quantized = quantize(model, cfg, train_set, None, qat_epochs, seed=seed, augmentation=recipe.augmentation)
        if quantized.status == "diverged":
            return {**figures, "status": "diverged", "reason": quantized.reason}
        shipped = quantized.model
        log(f"int8 {team} seed {seed}: calibrated and {qat_epochs} epochs of quantization-aware fine-tuning "
            f"({time.perf_counter() - started:.0f} s)")
    inference = {"flip_test": recipe.flip_test, "decoder": recipe.decoder}
    exported = export_onnx(shipped, cfg, path, max_bytes=cap, weights=weights, **inference)
    agreement = check_agreement(shipped, path, test_set, weights=weights, **inference)
    predicted = ExportedModel(path).keypoints(test_set.images.numpy())
    onnx = keypoint_metrics(torch.from_numpy(predicted), test_set.keypoints, math.nan)
    return {**figures, "status": "ok", "weight_bytes": exported.weight_bytes, "params": exported.params,
            "onnx": {key: getattr(onnx, key) for key in SCORES},
            "agreement": {key: agreement[key] for key in ("median_px", "mean_px", "max_px", "error_gap_px", "over",
                                                          "tolerance_px", "agrees")},
            "onnx_file": str(path)}


def float_model(data: ConeSet, data_id: str, cfg: Config, recipe: Recipe, team: str, seed: int,
                threads: int | None, log=print) -> tuple[torch.nn.Module | None, dict]:
    """The float model trained without ``team`` and its run record: the cached leave-one-team-out run
    (``objectives.heldout_runs``) when there is one with its weights, else trained now and cached. None for a
    run that diverged."""
    path = run_path(cfg, recipe, data_id, team, seed)
    state_path = path.with_suffix(".pt")
    record = read_run(path)
    if record is not None and (record.get("status") != "ok" or state_path.is_file()):
        log(f"float training of {cfg.family} w{cfg.width} d{cfg.depth} without {team}, seed {seed}: cached "
            f"({path.name})")
    else:
        result = run_fold(data, cfg, recipe, team, seed, threads)
        state = result.pop("_state", None)
        if state is not None:  # weights first, as benchmarks/generalisation.py stores them
            state_path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, state_path)
        record = write_run(path, cfg, recipe, data_id, team, seed, result)
        log(f"float training of {cfg.family} w{cfg.width} d{cfg.depth} without {team}, seed {seed}: "
            f"{result['train_seconds']:.0f} s, cached as {path.name}")
    if record.get("status") != "ok":
        return None, record
    model = create_model(cfg)
    model.load_state_dict(torch.load(state_path, weights_only=True))
    return model.eval(), record


def model_latency(path: Path, repeats: int, warmup: int = 10) -> dict[int, float]:
    """Median ONNX Runtime ms per crop at each of ``benchmarks.inference.BATCHES``, one thread."""
    model = ExportedModel(path, threads=1)
    return {batch: latency(model, batch, repeats, warmup)[0] for batch in BATCHES}


def summarise(folds: list[dict], models: list[tuple[str, str, Config]], teams: list[str]) -> list[dict]:
    """One row per model: per team the ONNX Runtime figures averaged over seeds, their mean over teams, the mean
    over teams by seed, and the worst torch-vs-ONNX-Runtime agreement of any fold."""
    rows = []
    for weights, label, cfg in models:
        mine = [f for f in folds if f["model"] == weights]
        done = [f for f in mine if f["status"] == "ok"]
        row = {"model": weights, "label": label, "config": cfg.to_dict(), "weights": weights,
               "weight_bytes": done[0]["weight_bytes"] if done else measure(cfg, weights=weights).weight_bytes,
               "float32_weight_bytes": measure(cfg).weight_bytes, "latency_ms": mine[0]["latency_ms"] if mine else None,
               "folds": len(mine), "diverged": len(mine) - len(done)}
        per_team = {}
        for team in teams:
            runs = [f for f in mine if f["team"] == team]
            per_team[team] = {key: _mean([f["onnx"][key] if f["status"] == "ok" else _failed(key) for f in runs])
                              for key in SCORES}
            per_team[team]["float_torch_mean_px"] = _mean([f["float_torch_mean_px"] for f in runs])
        row["teams"] = per_team
        row["mean"] = {key: _mean([per_team[t][key] for t in teams]) for key in [*SCORES, "float_torch_mean_px"]}
        seeds = sorted({f["seed"] for f in mine})
        row["seed_means"] = [_mean([f["onnx"]["mean_px"] if f["status"] == "ok" else math.inf
                                    for f in mine if f["seed"] == s]) for s in seeds]
        row["agreement"] = {key: max((f["agreement"][key] for f in done), default=None)
                            for key in ("median_px", "max_px", "error_gap_px", "over", "tolerance_px")}
        row["agrees"] = all(f["agreement"]["agrees"] for f in done)
        rows.append(row)
    return rows


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _failed(key: str) -> float:
    return math.inf if key.endswith("_px") else 0.0  # a diverged run: no keypoint within any threshold


def format_summary(summary: dict) -> str:
    teams = summary["teams"]
    shown = [*teams, "mean"] if len(teams) > 1 else teams
    names = {row["model"]: f"{row['label']} ({_arch(row['config'])})" for row in summary["rows"]}
    width = max(len("config"), *map(len, names.values()))
    lines = [f"{'model':<8} {'config':<{width}} {'weight bytes':>12} {'team':<6} {'mean px':>8} {'PCK@2':>6} "
             f"{'float px':>8} {'ms b=1':>7} {'ms b=32':>7}"]
    for row in summary["rows"]:
        times = row["latency_ms"]
        timing = f"{times[1]:>7.3f} {times[32]:>7.3f}" if times else f"{'-':>7} {'-':>7}"
        head = f"{row['model']:<8} {names[row['model']]:<{width}} {row['weight_bytes']:>12,}"
        for team in shown:
            s = row["mean"] if team == "mean" else row["teams"][team]
            lines.append(f"{head} {team:<6} {s['mean_px']:>8.3f} {s['pck2']:>6.1%} {s['float_torch_mean_px']:>8.3f} "
                         f"{timing}".rstrip())
            head, timing = " " * len(head), ""
        lines.append(f"{' ' * 9}{_notes(row)}")
    lines.append("weight bytes: the ONNX file's weight initializers in the model's format; mean px, PCK@2: that file "
                 "in ONNX Runtime on the held-out team (mean over seeds); float px: the float training in torch, "
                 "before any quantization; ms: ONNX Runtime median per crop, 1 thread")
    return "\n".join(lines)


def _arch(cfg: dict) -> str:
    return f"{cfg['family']} w{cfg['width']} d{cfg['depth']}"


def _notes(row: dict) -> str:
    """The line under a model's rows: its size in both formats, the spread over seeds, the agreement check."""
    seeds = row["seed_means"]
    spread = f"{min(seeds):.3f} - {max(seeds):.3f} px" if len(seeds) > 1 else "one seed"
    worst = row["agreement"]
    checked = (f"median {worst['median_px']:.2g} px, errors {worst['error_gap_px']:.2g} px apart, max "
               f"{worst['max_px']:.2g} px, {worst['over']} keypoints over {worst['tolerance_px']:g} px "
               f"({'agree' if row['agrees'] else 'DISAGREE'})"
               if worst["median_px"] is not None else "no fold finished")
    diverged = f"; {row['diverged']} of {row['folds']} runs diverged" if row["diverged"] else ""
    return (f"{row['weights']}: {row['weight_bytes'] / BYTES_PER_KB:.1f} KB (float32 {row['float32_weight_bytes']:,} "
            f"bytes); by seed {spread}; ONNX Runtime vs torch, worst fold: {checked}{diverged}")

if __name__ == "__main__":
    sys.exit(run(main, "int8_vs_float"))
