"""What early stopping buys: the same fixed search with and without it, in one run.

    python benchmarks/search_speed.py --data ../shared/cones_dataset --val-teams tuwr --trials 30 --epochs 9 \
        [--workers 2]

Runs ``runners/search.py`` twice on fresh SQLite studies with the same seed, sampler and split (the hand
designs not enqueued, so both runs sample from the first trial): once with early stopping (successive
halving), once with ``--no-early-stopping``. Prints wall time, trials/hour, epochs trained, the fraction of
epochs saved and the best validation error each reached.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from cli.args import doc_parser, non_negative_int, positive_int

REPO = Path(__file__).resolve().parents[1]


def run(label: str, storage: str, args: argparse.Namespace, extra: list[str]) -> dict:
    command = [sys.executable, str(REPO / "runners" / "search.py"), "--storage", storage, "--study-name", label,
               "--trials", str(args.trials), "--epochs", str(args.epochs), "--seed", str(args.seed),
               "--workers", str(args.workers), "--no-baselines", *extra]
    if args.data:
        command += ["--data", str(args.data)]
    if args.val_teams:
        command += ["--val-teams", args.val_teams]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name=label, storage=storage)
    trained = [t for t in study.trials if "epochs" in t.user_attrs]
    errors = [t.user_attrs["val_mean_px"] for t in study.trials
              if t.state == optuna.trial.TrialState.COMPLETE]
    return {"label": label, "wall": wall, "trials": len(study.trials),
            "epochs": sum(t.user_attrs["epochs"] for t in trained), "best": min(errors, default=float("nan"))}


def build_parser() -> argparse.ArgumentParser:
    p = doc_parser(__doc__)
    p.add_argument("--data", type=Path, default=None, help="Supervisely export (default: synthetic cones)")
    p.add_argument("--val-teams", default=None, help="comma-separated teams to validate on, as in search.py")
    p.add_argument("--trials", type=positive_int, default=30, help="trials of each run (default 30)")
    p.add_argument("--epochs", type=positive_int, default=9, help="most epochs of a trial (default 9)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of both runs (default 0)")
    p.add_argument("--workers", type=positive_int, default=1, help="trials at once (Ray) in both runs, as in search.py")
    return p


def main() -> None:
    p = build_parser()
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/speed.db"
        stopped = run("early-stopping", storage, args, [])
        full = run("no-early-stopping", storage, args, ["--no-early-stopping"])
    print(f"{args.trials} trials, up to {args.epochs} epochs each, {args.workers} at once, "
          f"data: {args.data or 'synthetic'}")
    print(f"{'run':<18} {'wall min':>9} {'trials/h':>9} {'epochs':>7} {'best px':>8}")
    for r in (stopped, full):
        print(f"{r['label']:<18} {r['wall'] / 60:9.1f} {r['trials'] / r['wall'] * 3600:9.1f} {r['epochs']:7d} "
              f"{r['best']:8.3f}")
    print(f"epochs saved by early stopping: {1 - stopped['epochs'] / full['epochs']:.0%}; "
          f"wall-time ratio {full['wall'] / stopped['wall']:.2f}x")


if __name__ == "__main__":
    main()
