"""Export one trial of a search as a JSON file a person can read, edit and retrain.

    python runners/export.py --study NAME [--storage URL] [--trial N | --max-kb K] --out best.json

Default: the best feasible trial (COMPLETE, weights within the study's cap). ``--max-kb K`` picks the most
accurate trial of at most K KB (the way to walk a multi-objective study's error/size front); ``--trial N``
takes trial number N as it is, if it completed within the cap. A trial over the cap is never exported.

The file holds the trial's ``config`` (the only thing retrain needs; edit it to try a variant), the search's
figures for it (``search``), the data split (``data``) and the training seed, so that

    python runners/retrain.py --config best.json --data DIR --out model/

retrains it on the same split, and ``--reproduce`` repeats the trial's own run.

The file also says how the model stores its weights (``weights``: the study's format, float32 or int8), which
retrain follows. ``--weights int8`` exports a trial of a float32 study for int8 deployment (it fits: int8 is
smaller); ``--weights float32`` from an int8 study only when the trial's float32 bytes are within the cap.
"""
from __future__ import annotations

if __name__ == "__main__":  # first: Ctrl-C while the imports below run is one line and exit 130
    from cli.exits import stop_on_ctrl_c
    stop_on_ctrl_c("export")

import argparse
import sys

from cli.args import doc_parser, positive_float
from cli.exits import UserError, run
from cli.paths import DEFAULT_STORAGE, check_out_file, check_storage, sqlite_path
from deploy.atomic import write_json
from search_space.config import BYTES_PER_KB, WEIGHT_FORMATS
from shipping.export import PickError, export_record, pick_trial
from studies.attrs import SEEDS_ATTR
from studies.reader import read_study


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = check_out_file(args.out, force=args.force, inputs=[p for p in [sqlite_path(args.storage)] if p])
    check_storage(args.storage, must_exist=True)
    try:
        study = read_study(args.storage, args.study)  # its StudyNotFound is a ValueError
        trial = pick_trial(study, number=args.trial, max_kb=args.max_kb)
        record = export_record(study, trial, args.storage, weights=args.weights)
    except (PickError, ValueError) as error:
        raise UserError(str(error)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, record)
    search = record["search"]
    seeds = " (mean of 2 seeds)" if SEEDS_ATTR in search else ""
    print(f"trial {trial.number} of study {study.study_name!r}: {search['val_mean_px']:.3f} px validation error"
          f"{seeds}, {search['weight_bytes']} bytes ({search['weight_bytes'] / BYTES_PER_KB:.1f} KB) of "
          f"{search['weights']} weights; ships as {record['weights']}")
    print(f"wrote {out}; retrain it with: python runners/retrain.py --config {out} --data DIR --out DIR")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.add_argument("--study", help="study name; may be left out when the storage holds one study")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument("--trial", type=int, help="export this trial number instead of the best one")
    pick.add_argument("--max-kb", type=positive_float,
                      help="export the most accurate trial of at most this many KB of weights (1 KB = 1024 bytes)")
    parser.add_argument("--weights", choices=WEIGHT_FORMATS,
                        help="how retrain should store the weights (default: the study's format)")
    parser.add_argument("--out", default="best.json", help="JSON file to write (default best.json; an existing file "
                                                          "only with --force, a database never)")
    parser.add_argument("--force", action="store_true", help="write over --out if it exists")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run(main, "export"))
