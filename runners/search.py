"""Search tiny cone-keypoint networks under a weight-size cap.

    python runners/search.py --trials 200                                   # synthetic cones (a demo)
    python runners/search.py --trials 200 --data ../shared/cones_dataset    # your Supervisely export
    optuna-dashboard sqlite:///optuna.db                                    # watch it live

Rerunning a command continues its study. Every rule the "advanced" switches turn off: docs/search.md.
"""
from __future__ import annotations

if __name__ == "__main__":  # first: Ctrl-C while the imports below run is one line and exit 130
    from cli.exits import stop_on_ctrl_c
    stop_on_ctrl_c("search")

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import optuna

from cli.args import (add_data_argument, add_val_teams_argument, doc_parser, fraction, non_negative_float,
                      non_negative_int, positive_float, positive_int)
from cli.exits import UserError, run
from cli.paths import DEFAULT_STORAGE, check_storage
from cones.coco import DEFAULT_MARGIN
from search_engine.fair_share import FairShare
from search_engine.progress import Progress, summary
from search_engine.queues import StartingPoint
from search_engine.reference import ReferenceQueue, enqueue_hand_designs
from search_engine.rungs import UNITS
from search_engine.running import QuietExpectedFailures, StopAtTarget, interrupt
from search_engine.settings import DEFAULT_EPOCHS, TrialSettings
from search_engine.storage import storage_faults
from search_engine.study import SAMPLERS, describe, open_storage, open_study
from search_engine.trial import Objective, TrialDiverged
from search_space.cap import max_bytes
from search_space.config import DEFAULT_MAX_KB, WEIGHT_FORMATS
from search_space.space import SearchSpace
from studies.reader import finished

OBJECTIVE_CHOICES = {"error": ("error",), "error,size": ("error", "size")}


def build_parser() -> argparse.ArgumentParser:
    p = doc_parser(__doc__)
    p.usage = "%(prog)s [--trials N] [--data DIR|FILE.json] [--val-teams TEAM,...] [option ...]"
    p.add_argument("--trials", type=positive_int, default=200, metavar="N",
                   help="run until the study holds N finished trials (default 200)")
    add_data_argument(p, "Supervisely export or COCO .json (default: synthetic cones, a demo)")
    add_val_teams_argument(p, "validate on these teams, a new camera, space- or comma-separated (default: 10%% of "
                              "frames)")
    p.add_argument("--max-kb", type=positive_float, default=DEFAULT_MAX_KB, metavar="KB",
                   help=f"cap on the weights' size (1 KB = 1024 bytes; default {DEFAULT_MAX_KB:g})")
    p.add_argument("--weights", choices=WEIGHT_FORMATS, default="float32", metavar="FORMAT",
                   help="what the cap counts: float32 (default) or int8 weights")
    p.add_argument("--objectives", default="error", choices=sorted(OBJECTIVE_CHOICES), metavar="OBJ",
                   help="error (default) or error,size (a Pareto front of error and KB)")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="trials at once; above 1 on Ray Tune (default 1)")
    p.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                   help="stop starting new trials after this long")
    p.add_argument("--storage", default=DEFAULT_STORAGE, metavar="URL",
                   help=f"Optuna storage (default {DEFAULT_STORAGE}; or postgresql+psycopg://...)")
    p.add_argument("--study-name", default="keypoints", metavar="NAME",
                   help="study to create or continue (default keypoints)")

    data = p.add_argument_group("data and split")
    data.add_argument("--val-fraction", type=fraction, default=0.1, metavar="F",
                      help="share of frames validated on without --val-teams (default 0.1)")
    data.add_argument("--seed", type=non_negative_int, default=0, metavar="N",
                      help="seed of the split, the sampler and every trial (default 0)")
    data.add_argument("--strict", action="store_true", help="fail on malformed annotations instead of skipping them")
    data.add_argument("--margin", type=non_negative_float, default=DEFAULT_MARGIN, metavar="M",
                      help=f"COCO full frames: box margin per side when cutting crops (default {DEFAULT_MARGIN})")

    rules = p.add_argument_group("advanced: the search's rules (docs/search.md)")
    rules.add_argument("--epochs", type=positive_int, default=DEFAULT_EPOCHS, metavar="N",
                       help=f"most epochs one trial may train (default {DEFAULT_EPOCHS})")
    rules.add_argument("--sampler", default="tpe", choices=SAMPLERS, metavar="NAME",
                       help="Optuna sampler: tpe (default), random or nsga2")
    rules.add_argument("--rungs", choices=(*UNITS, "optuna"), default="epochs", metavar="UNIT",
                       help="successive halving's rungs: epochs 1, 3, 9 (default), seconds, or optuna")
    rules.add_argument("--no-early-stopping", action="store_true",
                       help="train every trial --epochs epochs (no rungs, no reference bar)")
    rules.add_argument("--no-reference-bar", action="store_true",
                       help="do not stop a trial 3x behind the best error at its epoch")
    rules.add_argument("--no-baselines", action="store_true", help="do not run the original study's hand designs")
    rules.add_argument("--reference-first", action="store_true",
                       help="run the hand designs before the search, not beside it")
    rules.add_argument("--no-fair-share", action="store_true",
                       help="no fair exploration: the sampler picks every family, batch norm, head")
    rules.add_argument("--no-starting-point", action="store_true",
                       help="let the sampler pick a fresh study's first trials too")
    rules.add_argument("--no-confirm", action="store_true",
                       help="score a new best with one seed, not the mean of two")

    running = p.add_argument_group("advanced: running")
    running.add_argument("--ray-address", default=None, metavar="ADDR",
                         help="join a Ray cluster ('auto' or HOST:PORT) instead of starting one")
    running.add_argument("--threads", type=positive_int, default=None, metavar="N",
                         help="torch threads per trial (default: cores / workers)")
    running.add_argument("--heartbeat", type=positive_int, default=30, metavar="SECONDS",
                         help="between heartbeats; a killed run's trial is retried after two (default 30)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:  # before anything is read or written: a cap no family fits is one error, not a study of failures
        space = SearchSpace.for_cap(max_bytes(args.max_kb), args.weights)
    except ValueError as error:
        raise UserError(f"--max-kb {args.max_kb:g}: {error}") from None
    train_set, val_set, split_text = read_split(args)
    settings = TrialSettings(
        max_bytes=max_bytes(args.max_kb), max_epochs=args.epochs, objectives=OBJECTIVE_CHOICES[args.objectives],
        seed=args.seed, threads=args.threads or max(1, (os.cpu_count() or 1) // args.workers),
        reference_bar=not (args.no_early_stopping or args.no_reference_bar), weights=args.weights, rungs=args.rungs,
        confirm=not args.no_confirm, val_by_team=len(_teams(args) or ()) > 1,
    )
    check_storage(args.storage, must_exist=False)
    opened = []  # the storage, once open: storage_faults records its running trials FAIL
    with storage_faults(args.storage, "search", opened):
        return search(args, settings, space, train_set, val_set, split_text, opened)


def search(args: argparse.Namespace, settings: TrialSettings, space: SearchSpace, train_set, val_set, split_text: str,
           opened: list) -> int:
    """Open (or continue) the study and run it to ``--trials``; the exit code."""
    storage = open_storage(args.storage, heartbeat_interval=args.heartbeat)
    opened.append(storage)
    study = open_study(storage, args.study_name, settings, sampler=args.sampler,
                       early_stopping=not args.no_early_stopping)
    data_name = study_data_name(args.data, args.margin)
    describe(study, settings, data=data_name, split=split_text, val_teams=_teams(args), val_fraction=args.val_fraction,
             train_size=len(train_set), val_size=len(val_set))
    if not args.no_baselines:
        reference(study, space, all_now=args.reference_first)

    done = finished(study)
    if done >= args.trials:
        print(f"study {args.study_name!r} already holds {done} finished trials (--trials {args.trials})")
        print(summary(study, settings.max_bytes, args.storage))
        return 0
    print(f"study {args.study_name!r} in {args.storage}: {done} finished trials, running to {args.trials}")
    started = time.monotonic()
    if not run_trials(args, study, storage, settings, space, train_set, val_set):
        return 130
    minutes = (time.monotonic() - started) / 60
    print(f"\nthis run: {finished(study) - done} trials in {minutes:.1f} min")
    print(summary(study, settings.max_bytes, args.storage))
    return 0


def study_data_name(data: list[Path] | None, margin: float):
    """What the study records as its data: ``synthetic``, the resolved path, or a list of them (several
    ``--data``); a COCO file read with another margin says so, since its crops differ and a study must not mix
    the two."""
    from cones.load import source_record

    names = source_record(data, resolve=True)
    if margin == DEFAULT_MARGIN:
        return names
    marked = [f"{name} (margin {margin:g})" if name.endswith(".json") else name
              for name in ([names] if isinstance(names, str) else names)]
    return marked[0] if isinstance(names, str) else marked


def _teams(args: argparse.Namespace) -> list[str] | None:
    return [t.strip() for t in args.val_teams] if args.val_teams else None


def read_split(args: argparse.Namespace):
    """(train, validation, the split's description): ``--data`` split by ``--val-teams`` or frames."""
    from cones.load import load_data
    from cones.splits import describe_split, split

    try:
        data = load_data(args.data, strict=args.strict, margin=args.margin)
        train_set, val_set = split(data, val_fraction=args.val_fraction, val_teams=_teams(args), seed=args.seed)
    except ValueError as error:  # a missing folder, not an export, --strict with bad files, an unknown team
        raise UserError(str(error)) from None
    split_text = describe_split(train_set, val_set)
    teams = _teams(args) or ()
    if len(teams) > 1:  # a study scored this way must not mix with one that pooled the crops
        split_text += f"; scored as the mean of the {len(teams)} teams' errors"
    print(split_text)
    return train_set, val_set, split_text


def reference(study: optuna.Study, space: SearchSpace, all_now: bool) -> None:
    """The hand designs: reused from another study of the storage, queued (all now, or beside the search), or
    recorded over the cap."""
    counts = enqueue_hand_designs(study, space, all_now=all_now)
    if counts["reused"]:
        print(f"reused {counts['reused']} hand designs' results from another study of this storage with the same "
              "data, split, epochs, seed and cap (user attribute reused_from says which)")
    if counts["enqueued"]:
        print(f"enqueued {counts['enqueued']} hand designs of the original study as the first trials (the reference)")
    if counts["pending"]:
        print(f"{counts['pending']} hand designs of the original study (the reference) run beside the search, one at a "
              "time")
    if counts["oversize"]:
        print(f"{counts['oversize']} hand designs are over the cap: recorded PRUNED (oversize), not trained")


def run_trials(args: argparse.Namespace, study, storage, settings: TrialSettings, space: SearchSpace, train_set,
               val_set) -> bool:
    """Run trials to ``--trials`` in process or on Ray; False when Ctrl-C or SIGTERM stopped it."""
    # `kill` (SIGTERM) stops like Ctrl-C: the running trial is recorded, the study stays resumable. The
    # caller's handler comes back when the search ends (main() is also called in-process, by tests).
    previous_sigterm = signal.signal(signal.SIGTERM, interrupt)
    progress = Progress(study, args.trials, settings.max_bytes)
    queues = turns(args, space, settings)
    try:
        if args.workers > 1 or args.ray_address:
            from search_engine.ray_driver import run_on_ray

            run_on_ray(study, storage, settings, space, train_set, val_set, progress, queues, target=args.trials,
                       workers=args.workers, timeout=args.timeout, address=args.ray_address)
        else:
            for queue in queues:
                queue.maybe_enqueue(study)
            with QuietExpectedFailures() as quiet:
                study.optimize(Objective(settings, space, train_set, val_set), n_trials=args.trials - finished(study),
                               timeout=args.timeout, catch=(TrialDiverged,),
                               callbacks=[quiet, progress, StopAtTarget(args.trials), *queues])
    except KeyboardInterrupt:
        progress.close()
        print("\ninterrupted: the running trial is recorded FAIL (status 'interrupted') and does not count; "
              "finished trials are saved; rerun the same command to continue", file=sys.stderr)
        return False
    finally:
        progress.close()  # tqdm closes once; also before a storage fault's line
        signal.signal(signal.SIGTERM, previous_sigterm)
    return True


def turns(args: argparse.Namespace, space: SearchSpace, settings: TrialSettings) -> tuple:
    """What queues trials before the sampler's turn, in order: the hand designs beside the search, the starting
    point, fair exploration."""
    queues = []
    if not (args.no_baselines or args.reference_first):
        queues.append(ReferenceQueue(space, target=args.trials))
    if not args.no_starting_point:
        queues.append(StartingPoint(space, target=args.trials))
    if not args.no_fair_share:
        queues.append(FairShare(space.families(), settings.max_epochs, target=args.trials))
    return tuple(queues)


if __name__ == "__main__":
    sys.exit(run(main, "search"))
