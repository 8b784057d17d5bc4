"""How many of its own labelled crops a new team needs: the adaptation curve, leave-one-team-out.

    python benchmarks/adapt_curve.py --model model/ --data ../shared/cones_dataset --seeds 2 --jobs 2 \
        --png docs/figures/adapt_curve.png

For each shared team: the model shipped without it (``--model``'s config and recipe trained on the other teams;
the run ``benchmarks/generalisation.py`` caches, trained here if missing) is adapted with 10, 30 and 100 crops
of the team (``--budgets``) and tested on the team's other crops. Half of the team's frames (chosen by the
seed) are the test crops; the labelled crops come from the other half, whole frames, so no frame is on both
sides. Beside each budget: the crude adaptation (each keypoint's mean offset on the labelled crops,
subtracted), and the fine-tune ``runners/adapt.py`` runs (``--modes``: ``mix``, the shared data mixed in, its
default where that data is on the machine; ``replay``, only the packaged replay set mixed in, as on a fresh clone
without the shared data (``cones.replay``: the same selection, made from the teams the model was trained on);
``mix-mirror``, ``mix`` with mirrored crops; ``penalty``, L2-SP instead of shared crops). ``--teams`` holds out
only some teams (a slice of the curve).
Prints mean px and PCK@2 per team and budget, averaged over seeds, with how many seeds fine-tuning beat the
crude fix; ``--png`` draws the curve.
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from benchmarks.generalisation import benchmark
from cli.args import add_data_argument, doc_parser
from cones.replay import REPLAY_CROPS, REPLAY_SEED, select_replay
from cones.types import ConeSet
from objectives.heldout_runs import run_path
from objectives.recipe import RECIPES, Recipe
from objectives.train import predict_keypoints
from search_space.config import Config
from search_space.registry import create_model, memory_format
from shipping.adapt import (AdaptSettings, fine_tune, keypoint_errors, mean_offset, pixel_errors,
                            summarise_errors)

PENALTY = 0.1  # L2-SP weight in the penalty mode (runners/adapt.py's default)
# Ways of fine-tuning: (what is mixed in: every shared crop, the replay set or nothing; AdaptSettings changes).
# "mix" is runners/adapt.py's default with the shared data on the machine, "replay" without it; "mix-mirror"
# mirrors crops as the recipe's augmentation does, to measure what not mirroring is worth.
MODES = {"mix": ("shared", {}), "replay": ("replay", {}), "mix-mirror": ("shared", {"mirror": True}),
         "penalty": (None, {"penalty": PENALTY})}


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.add_argument("--model", required=True, metavar="DIR", help="a folder retrain.py wrote (its config, recipe)")
    add_data_argument(parser, "the shared export, 2+ teams", required=True)
    parser.add_argument("--budgets", default="10,30,100", help="labelled crops per team (default 10,30,100)")
    parser.add_argument("--modes", default="mix", help=f"comma-separated, of {', '.join(MODES)} (default mix)")
    parser.add_argument("--teams", help="comma-separated teams to hold out (default: every team)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--png", metavar="FILE")
    parser.add_argument("--json", metavar="FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    modes = args.modes.split(",")
    if min(budgets) < 5 or any(m not in MODES for m in modes) or args.seeds < 1 or args.jobs < 1:
        parser.error(f"budgets must be >= 5, modes of {', '.join(MODES)}, seeds and jobs >= 1")
    cfg, recipe, recipe_name = read_model(Path(args.model))

    from cones.load import load_data
    data = load_data(args.data)
    data_id = data.fingerprint()
    # The models shipped without each team: the generalisation benchmark's runs (trained now if missing).
    teams = sorted(set(data.teams)) if args.teams is None else args.teams.split(",")
    if not set(teams) <= set(data.teams):
        parser.error(f"--teams {args.teams}: the data's teams are {', '.join(sorted(set(data.teams)))}")
    benchmark(data, data_id, [("config", cfg, recipe_name, recipe)], seeds=range(args.seeds), jobs=args.jobs,
              need_weights=True, teams=teams)
    tasks = [(data, cfg, recipe, data_id, team, seed, budgets, modes)
             for seed in range(args.seeds) for team in teams]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            results = [r for rows in pool.map(_curve_task, tasks) for r in rows]
    else:
        results = [r for task in tasks for r in _curve_task(task)]
    table = summarise(results)
    print(format_table(table))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": results, "table": table}, indent=1) + "\n")
    if args.png:
        draw(table, args.png)
        print(f"wrote {args.png}")
    return 0


def read_model(folder: Path) -> tuple[Config, Recipe, str]:
    path = folder / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
        cfg = Config.from_dict(metrics["config"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"adapt_curve: --model {folder}: need the metrics.json retrain.py writes ({error})") from None
    name = (metrics.get("recipe") or {}).get("name", "ship")
    if name not in RECIPES:
        raise SystemExit(f"adapt_curve: {path} names recipe {name!r}, not one of {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    if metrics.get("epochs") and metrics["epochs"] != recipe.epochs:
        recipe = recipe.replace(epochs=int(metrics["epochs"]))  # ship mode's chosen budget
    return cfg, recipe, name


def labelled_and_test(team_data: ConeSet, budget: int, seed: int) -> tuple[ConeSet, ConeSet]:
    """``budget`` labelled crops from whole frames of one half of the team's frames; the other half is the
    test set (the same for every budget of a seed)."""
    frames = sorted(set(team_data.frames))
    order = np.random.default_rng(seed).permutation(frames)
    test_frames = set(order[: len(order) // 2])
    test = [i for i, f in enumerate(team_data.frames) if f in test_frames]
    picked: list[int] = []
    for frame in order[len(order) // 2:]:
        if len(picked) >= budget:
            break
        picked += [i for i, f in enumerate(team_data.frames) if f == frame]
    return team_data.subset(picked[:budget]), team_data.subset(test)


def _curve_task(task) -> list[dict]:
    data, cfg, recipe, data_id, team, seed, budgets, modes = task
    torch.set_num_threads(1)
    model = create_model(cfg)
    model.load_state_dict(torch.load(run_path(cfg, recipe, data_id, team, seed).with_suffix(".pt"), weights_only=True))
    model.eval()
    inference = {"flip_test": recipe.flip_test, "decoder": recipe.decoder}
    in_team = np.array([t == team for t in data.teams])
    team_data, shared = data.subset(np.flatnonzero(in_team)), data.subset(np.flatnonzero(~in_team))
    mixed_in = {"shared": shared, "replay": select_replay(shared, REPLAY_CROPS, REPLAY_SEED), None: None}
    rows = []
    for budget in budgets:
        labelled, test = labelled_and_test(team_data, budget, seed)
        predicted = predict_keypoints(model, test.images, memory_format(cfg), **inference)  # shipped, on test
        offset = mean_offset(model, cfg, labelled, **inference)
        row = {"team": team, "seed": seed, "budget": budget, "labelled": len(labelled), "test": len(test),
               "shipped": summarise_errors(pixel_errors(predicted, test.keypoints)),
               "offset": summarise_errors(pixel_errors(predicted - offset, test.keypoints))}
        for mode in modes:
            source, changes = MODES[mode]
            settings = AdaptSettings(augmentation=recipe.augmentation, **changes)
            result = fine_tune(model, cfg, labelled, shared=mixed_in[source], settings=settings, seed=seed,
                               **inference)
            row[mode] = {**summarise_errors(keypoint_errors(result.model, cfg, test, **inference)),
                         "kept_shipped": result.kept_shipped, "crossval_after_px": result.after.mean_px}
        rows.append(row)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    table = []
    for team in sorted({r["team"] for r in rows}):
        for budget in sorted({r["budget"] for r in rows}):
            mine = [r for r in rows if r["team"] == team and r["budget"] == budget]
            entry = {"team": team, "budget": budget, "seeds": len(mine)}
            for method in ("shipped", "offset", *MODES):
                if method in mine[0]:
                    entry[method] = {k: float(np.mean([r[method][k] for r in mine])) for k in ("mean_px", "pck2")}
            for mode in MODES:
                if mode in mine[0]:
                    entry[f"{mode}_beats_offset"] = sum(r[mode]["mean_px"] < r["offset"]["mean_px"] for r in mine)
            table.append(entry)
    return table


def format_table(table: list[dict]) -> str:
    methods = [m for m in ("shipped", "offset", *MODES) if m in table[0]]
    names = {"shipped": "shipped (0 crops)", "offset": "mean offset", "mix": "fine-tune, mixed",
             "replay": "fine-tune, replay set",
             "mix-mirror": "mixed, mirrored", "penalty": "fine-tune, L2-SP"}
    lines = [f"{'team':<6} {'crops':>5} " + " ".join(f"{names[m]:>22}" for m in methods) + "  fine-tune beat offset"]
    for e in table:
        cells = " ".join(f"{e[m]['mean_px']:>11.3f} px {e[m]['pck2']:>6.1%}" for m in methods)
        wins = ", ".join(f"{m} {e[f'{m}_beats_offset']}/{e['seeds']}" for m in MODES if m in e)
        lines.append(f"{e['team']:<6} {e['budget']:>5} {cells}  {wins}")
    return "\n".join(lines)


def draw(table: list[dict], path: str) -> None:
    from matplotlib.figure import Figure

    from analysis.png import save_figure

    teams = sorted({e["team"] for e in table})
    figure = Figure(figsize=(4 * len(teams), 3.6), dpi=110)
    axes = figure.subplots(1, len(teams), sharey=True)
    for axis, team in zip(np.atleast_1d(axes), teams):
        mine = [e for e in table if e["team"] == team]
        budgets = [e["budget"] for e in mine]
        shipped = np.mean([e["shipped"]["mean_px"] for e in mine])
        axis.axhline(shipped, color="grey", linestyle=":", label="shipped (no crops)")
        styles = {"offset": ("mean offset", "#ff7f0e"), "mix": ("fine-tune, shared mixed in", "#1f77b4"),
                  "replay": ("fine-tune, replay set only", "#d62728"),
                  "mix-mirror": ("fine-tune, mirrored crops", "#9467bd"),
                  "penalty": ("fine-tune, L2-SP", "#2ca02c")}
        for method, (label, colour) in styles.items():
            if method in mine[0]:
                axis.plot(budgets, [e[method]["mean_px"] for e in mine], marker="o", color=colour, label=label)
        axis.set_xscale("log")
        axis.set_xticks(budgets, [str(b) for b in budgets])
        axis.set_title(f"{team} held out", fontsize=10)
        axis.set_xlabel("labelled crops of the team")
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("mean px on the team's other crops")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    save_figure(figure, path)


if __name__ == "__main__":
    sys.exit(main())
