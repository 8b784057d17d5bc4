"""What a search would ship: fresh studies at equal wall time, each study's best scored leave-one-team-out.

    python benchmarks/search_quality.py --data ../shared/cones_dataset --data ../shared/cones_more
    python benchmarks/search_quality.py --data ../shared/cones_dataset --data ../shared/cones_more \
        --minutes 30 --workers 2 --seeds 0,1 --caps 80,20 --arms product,no-start,random,plain \
        --also benchmarks/configs/start-deeper.json --out runs/search-quality

For every cap, seed and arm, a fresh study in its own SQLite file under ``--out`` searches for ``--minutes`` of
wall time on ``--workers`` workers, one study after the other so each has the whole machine (a study already
there is kept: rerunning adds only what is missing):

- ``product``: ``runners/search.py`` with its defaults;
- ``no-start``: the defaults without the starting points (``--no-starting-point``);
- ``random``: random sampling with the product's early stopping, no starting points, no fair exploration;
- ``plain``: plain Optuna as a user writes it (``benchmarks/plain_optuna.py``: TPE defaults, ``MedianPruner``,
  every trial ``--epochs`` epochs).

Each study's best feasible trial, by its own validation (``--val-teams``, default tuwr), is then what that search
would ship: it is trained leave-one-team-out on every team of ``--data`` with ``--recipe`` and ``--loto-seeds``
seeds (``benchmarks/generalisation.py``'s cached runs, so a config found twice trains once) and scored by the
mean over teams of the held-out error, plus each group's mean (``--groups``). ``--also CONFIG.json`` scores
known configs (the shipped one, say) the same way. The table gives, per cap, each study's trials, its best's
validation error, config and leave-one-team-out mean, and how far that is above the best known for the cap (the
lowest of every study's best and every ``--also`` config within the cap); ``--png`` plots it, ``--json`` writes
it. ``--trials N`` ends each study after N trials instead (tests, demos).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import optuna

from benchmarks.generalisation import DEFAULT_GROUPS, benchmark, group_means, parse_groups, read_config
from cli.args import add_data_argument, doc_parser, positive_float, positive_int
from cli.paths import sqlite_path
from cones.load import data_options, load_data
from objectives.recipe import RECIPES
from search_space.cap import max_bytes, within
from search_space.config import Config
from search_space.size import measure
from studies.reader import best_feasible, finished

REPO = Path(__file__).resolve().parents[1]
ARMS = {
    "product": [],
    "no-start": ["--no-starting-point"],
    "random": ["--sampler", "random", "--no-starting-point", "--no-fair-share"],
    "plain": None,  # benchmarks/plain_optuna.py
}


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    add_data_argument(parser, "Supervisely export or COCO .json (2+ teams in all)", required=True)
    parser.add_argument("--val-teams", default="tuwr", help="the searches' validation teams (default tuwr)")
    parser.add_argument("--minutes", type=positive_float, default=30.0, help="wall time per study (default 30)")
    parser.add_argument("--trials", type=positive_int, help="end each study after this many trials instead")
    parser.add_argument("--workers", type=positive_int, default=2, help="trials at once per study (default 2)")
    parser.add_argument("--seeds", default="0,1", help="search seeds (default 0,1)")
    parser.add_argument("--caps", default="80,20", help="float32 size caps in KB (default 80,20)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"searches to compare (default {','.join(ARMS)})")
    parser.add_argument("--epochs", type=positive_int, default=12, help="most epochs per search trial (default 12)")
    parser.add_argument("--recipe", default="today", choices=sorted(RECIPES),
                        help="recipe of the leave-one-team-out runs (default today: 30 epochs)")
    parser.add_argument("--loto-epochs", type=positive_int, help="epochs of those runs (default: the recipe's)")
    parser.add_argument("--loto-seeds", type=positive_int, default=2, help="their seeds (default 2)")
    parser.add_argument("--also", action="append", default=[], metavar="CONFIG.json",
                        help="a known config scored the same way (again for more)")
    parser.add_argument("--groups", default=DEFAULT_GROUPS, type=parse_groups, help="teams reported apart")
    parser.add_argument("--out", default="runs/search-quality", help="folder for the studies")
    parser.add_argument("--json", metavar="FILE", help="write the table here")
    parser.add_argument("--png", metavar="FILE", help="plot it here")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    arms = args.arms.split(",")
    unknown = [arm for arm in arms if arm not in ARMS]
    if unknown:
        parser.error(f"unknown arm {unknown[0]!r}; known: {', '.join(ARMS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    caps = [float(c) for c in args.caps.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    studies = []
    for cap in caps:
        for seed in seeds:
            for arm in arms:
                storage = f"sqlite:///{out / f'{arm}-{cap:g}kb-s{seed}.db'}"
                run_study(args, arm, cap, seed, storage, out)
                studies.append({"arm": arm, "cap_kb": cap, "seed": seed, "storage": storage, **read_best(storage, cap)})

    data = load_data(args.data)
    recipe = RECIPES[args.recipe]
    if args.loto_epochs:
        recipe = recipe.replace(epochs=args.loto_epochs)
    known = [(f"--also {path}", read_config(path)) for path in args.also]
    configs = {json.dumps(s["config"], sort_keys=True): Config.from_dict(s["config"]) for s in studies if s["config"]}
    configs.update({json.dumps(cfg.to_dict(), sort_keys=True): cfg for _, cfg in known})
    runs = [(f"config {i}", cfg, args.recipe, recipe) for i, cfg in enumerate(configs.values())]
    summary = benchmark(data, data.fingerprint(), runs, seeds=range(args.loto_seeds), jobs=args.workers)
    scores = {}
    for (label, cfg, _, _), key in zip(runs, configs):
        row = next(r for r in summary["rows"] if r["model"] == label and r["inference"] == recipe.inference)
        scores[key] = {"loto_px": row["mean"]["mean_px"], "seed_means": row["seed_means"],
                       "groups": group_means(row, args.groups)}
    for study in studies:
        study.update(scores.get(json.dumps(study["config"], sort_keys=True), {}) if study["config"] else {})
    also = [{"arm": name, "config": cfg.to_dict(), "weight_bytes": measure(cfg).weight_bytes,
             **scores[json.dumps(cfg.to_dict(), sort_keys=True)]} for name, cfg in known]
    table = {"studies": studies, "also": also, "teams": summary["teams"], "recipe": args.recipe,
             "loto_epochs": recipe.epochs, "loto_seeds": args.loto_seeds, "minutes": args.minutes}
    mark_best_known(table, caps)
    print(format_table(table, caps))
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.png:
        plot(table, caps, args.png)
        print(f"wrote {args.png}")
    return 0


def run_study(args, arm: str, cap: float, seed: int, storage: str, out: Path) -> None:
    """One fresh study, unless its database is already there (a finished run is kept)."""
    db = sqlite_path(storage)
    if db.exists():
        return
    length = (["--trials", str(args.trials)] if args.trials else
              ["--timeout", str(args.minutes * 60)] + (["--trials", "100000"] if arm != "plain" else []))
    common = [*data_options(args.data), "--val-teams", args.val_teams, "--seed", str(seed), "--max-kb", f"{cap:g}",
              "--epochs", str(args.epochs), "--storage", storage, "--workers", str(args.workers), *length]
    if arm == "plain":
        command = [sys.executable, str(REPO / "benchmarks" / "plain_optuna.py"), *common]
    else:
        command = [sys.executable, str(REPO / "runners" / "search.py"), *common, *ARMS[arm]]
    print(f"running {arm}, {cap:g} KB, seed {seed}: {' '.join(command[1:])}", flush=True)
    with open(out / f"{db.stem}.log", "w") as log:
        code = subprocess.run(command, cwd=REPO, stdout=log, stderr=log, check=False).returncode
    if code != 0:
        raise SystemExit(f"search_quality: the {arm} study exited {code}; see {out / f'{db.stem}.log'}")


def read_best(storage: str, cap_kb: float) -> dict:
    """The study's trial count and its best feasible trial (config, validation error, size)."""
    study = optuna.load_study(study_name="keypoints", storage=storage)
    trials = study.get_trials(deepcopy=False)
    best = best_feasible(trials, max_bytes(cap_kb))
    if best is None:
        return {"trials": finished(study), "config": None, "val_px": None, "weight_bytes": None}
    return {"trials": finished(study), "config": best.user_attrs["config"], "trial": best.number,
            "val_px": float(best.user_attrs.get("val_mean_px", best.value)),
            "weight_bytes": int(best.user_attrs["weight_bytes"])}


def known_within(table: dict, cap_kb: float) -> list[dict]:
    """The ``--also`` configs that fit ``cap_kb``, by the one cap rule."""
    return [r for r in table["also"] if within(r["weight_bytes"], max_bytes(cap_kb))]


def mark_best_known(table: dict, caps: list[float]) -> None:
    """Each row's excess over the lowest leave-one-team-out error known for its cap."""
    table["best_known"] = {}
    for cap in caps:
        rows = [r for r in table["studies"] if r["cap_kb"] == cap] + known_within(table, cap)
        best = min((r["loto_px"] for r in rows if r.get("loto_px") is not None), default=math.inf)
        table["best_known"][f"{cap:g}"] = best
        for row in table["studies"]:
            if row["cap_kb"] == cap and row.get("loto_px") is not None:
                row["above_best_known"] = row["loto_px"] / best - 1


def describe_config(cfg: dict | None) -> str:
    if cfg is None:
        return "no feasible trial"
    return f"{cfg['family']} w{cfg['width']} d{cfg['depth']}, lr {cfg['lr']:.2g}, batch {cfg['batch_size']}"


def format_table(table: dict, caps: list[float]) -> str:
    lines = [f"each study's best, trained leave-one-team-out on {', '.join(table['teams'])} ({table['recipe']} recipe, "
             f"{table['loto_epochs']} epochs, {table['loto_seeds']} seeds); searches of {table['minutes']:g} min"]
    for cap in caps:
        lines.append(f"\n{cap:g} KB (best known: {table['best_known'][f'{cap:g}']:.3f} px)")
        lines.append(f"{'search':<24} {'seed':>4} {'trials':>6} {'val px':>7} {'LOTO px':>8} {'vs best':>8}  "
                     "groups; config")
        rows = [r for r in table["studies"] if r["cap_kb"] == cap]
        rows += [{**r, "seed": "", "trials": "", "val_px": None} for r in known_within(table, cap)]
        for row in rows:
            val = f"{row['val_px']:.3f}" if row.get("val_px") is not None else "-"
            loto = f"{row['loto_px']:.3f}" if row.get("loto_px") is not None else "-"
            above = f"{row['above_best_known']:+.1%}" if row.get("above_best_known") is not None else ""
            groups = ", ".join(f"{name} {px:.3f}" for name, px in row.get("groups", {}).items())
            lines.append(f"{row['arm'][:24]:<24} {row['seed']:>4} {row['trials']:>6} {val:>7} {loto:>8} {above:>8}  "
                         f"{groups}; {describe_config(row['config'])}")
    return "\n".join(lines)


def plot(table: dict, caps: list[float], path: str) -> None:
    """One panel per cap: each search's best (a point per seed) and the known configs (lines)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5 * len(caps), 4.2), dpi=100)
    FigureCanvasAgg(figure)
    arms = list(dict.fromkeys(r["arm"] for r in table["studies"]))
    for i, cap in enumerate(caps):
        ax = figure.add_subplot(1, len(caps), i + 1)
        for x, arm in enumerate(arms):
            values = [r["loto_px"] for r in table["studies"]
                      if r["arm"] == arm and r["cap_kb"] == cap and r.get("loto_px") is not None]
            ax.scatter([x] * len(values), values, color="#1f77b4", zorder=3, label="a study's best" if x == 0 else None)
        for j, row in enumerate(known_within(table, cap)):
            ax.axhline(row["loto_px"], color="#7f7f7f", linestyle=("--", ":", "-.")[j % 3],
                       label=f"{describe_config(row['config'])}")
        ax.set_xticks(range(len(arms)), arms)
        ax.set_xlim(-0.5, len(arms) - 0.5)
        ax.set_title(f"{cap:g} KB cap", fontsize=10)
        ax.set_ylabel("leave-one-team-out mean px" if i == 0 else "")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    figure.suptitle(f"What each search ships: its best, held-out error over {len(table['teams'])} teams "
                    f"({table['minutes']:g} min per study)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path)


if __name__ == "__main__":
    sys.exit(main())
