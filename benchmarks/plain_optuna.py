"""Plain Optuna, as a user writes it: the search benchmark's baseline (``benchmarks/search_quality.py``).

    python benchmarks/plain_optuna.py --data ../shared/cones_dataset --val-teams tuwr --storage sqlite:///plain.db \
        --timeout 1800 --workers 2

The same search space, size cap, training and validation as ``runners/search.py``, none of its rules: Optuna's
``TPESampler`` with its defaults, ``MedianPruner`` on the validation error after every epoch, every trial trained
for ``--epochs`` epochs unless pruned, no hand designs, no starting points, no fair exploration, one seed per
trial. ``--workers N`` runs N processes on the one study (how a user parallelises Optuna), each with
``cores / N`` torch threads. Trials record what ``runners/search.py`` records (config, exact size, ``val_mean_px``),
so the same readers pick the study's best.
"""
from __future__ import annotations

import argparse
import os
import sys
from multiprocessing import get_context

import optuna

from cli.args import add_data_argument, doc_parser, non_negative_int, positive_float, positive_int
from cones.load import load_data
from cones.splits import split
from objectives.train import train
from search_engine.trial import record_size
from search_space.cap import max_bytes
from search_space.config import DEFAULT_MAX_KB
from search_space.space import SearchSpace, sample_config

STUDY = "keypoints"


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    add_data_argument(parser, "Supervisely export or COCO .json (default: synthetic cones)")
    parser.add_argument("--val-teams", default=None, help="comma-separated validation teams (default: 10%% of frames)")
    parser.add_argument("--storage", required=True, help="Optuna storage URL of the study")
    parser.add_argument("--timeout", type=positive_float, default=None, help="seconds before no new trial starts")
    parser.add_argument("--trials", type=positive_int, default=None, help="trials per worker (default: no limit)")
    parser.add_argument("--max-kb", type=positive_float, default=DEFAULT_MAX_KB, help="size cap in KB")
    parser.add_argument("--epochs", type=positive_int, default=12, help="epochs of every trial (default 12)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="split and sampler seed (default 0)")
    parser.add_argument("--workers", type=positive_int, default=1, help="processes on the study (default 1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.timeout is None and args.trials is None:
        parser.error("give --timeout or --trials")
    teams = [t.strip() for t in args.val_teams.split(",")] if args.val_teams else None
    optuna.create_study(study_name=STUDY, storage=args.storage, direction="minimize", load_if_exists=True)
    jobs = [(args, teams, worker) for worker in range(args.workers)]
    if args.workers == 1:
        run_worker(*jobs[0])
    else:
        context = get_context("spawn")
        workers = [context.Process(target=run_worker, args=job) for job in jobs]
        for process in workers:
            process.start()
        for process in workers:
            process.join()
    return 0


def run_worker(args, teams: list[str] | None, worker: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_data(args.data, log=lambda line: None)
    train_set, val_set = split(data, val_teams=teams, seed=args.seed)
    cap = max_bytes(args.max_kb)
    space = SearchSpace.for_cap(cap)
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    study = optuna.load_study(study_name=STUDY, storage=args.storage,
                              sampler=optuna.samplers.TPESampler(seed=args.seed * 1000 + worker),
                              pruner=optuna.pruners.MedianPruner())

    def objective(trial: optuna.Trial) -> float:
        cfg = sample_config(trial, space)
        record_size(trial, cfg, cap)  # over the cap: pruned before training, as any honest search must

        def report(epoch: int, metrics) -> bool:
            trial.report(metrics.mean_px, epoch)
            return trial.should_prune()

        result = train(cfg, train_set, val_set, args.epochs, seed=args.seed, threads=threads, on_epoch=report,
                       val_by_team=len(teams or ()) > 1)
        trial.set_user_attr("epochs", result.epochs)
        trial.set_user_attr("val_mean_px", result.metrics.mean_px)
        if result.status == "stopped":
            raise optuna.TrialPruned()
        if result.status == "diverged":
            trial.set_user_attr("status", "diverged")
            return float("inf")
        trial.set_user_attr("status", "complete")
        return result.metrics.mean_px

    study.optimize(objective, n_trials=args.trials, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
