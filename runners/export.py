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

import optuna

from deploy.atomic import write_json
from studies.reader import (best_feasible, is_usable, read_study, study_cap, study_weights, trial_error,
                            trial_weight_bytes)
from studies.attrs import SEEDS_ATTR
from search_space.config import WEIGHT_FORMATS, Config
from search_space.size import BYTES_PER_KB, max_bytes
from cli.paths import DEFAULT_STORAGE, check_out_file, check_storage, sqlite_path
from cli.exits import UserError, run
from cli.args import doc_parser, positive_float

SEARCH_ATTRS = ("status", "val_mean_px", "val_median_px", "val_pck1", "val_pck2", "val_pck3", "val_heatmap_mse",
                SEEDS_ATTR, "weight_bytes", "params", "macs", "epochs", "train_seconds", "baseline")


class PickError(Exception):
    """A request the study cannot satisfy; the message names the bad value and what to do instead."""


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


def pick_trial(study: optuna.Study, number: int | None = None, max_kb: float | None = None) -> optuna.trial.FrozenTrial:
    """The trial to export: ``number``, or the lowest validation error within the cap (and ``max_kb``)."""
    cap = study_cap(study)
    trials = study.get_trials(deepcopy=False)
    if number is not None:
        found = [t for t in trials if t.number == number]
        if not found:
            numbers = [t.number for t in trials]
            span = f"{min(numbers)}..{max(numbers)}" if numbers else "none"
            raise PickError(f"--trial {number}: study {study.study_name!r} has no such trial (trials {span})")
        trial = found[0]
        if trial.state != optuna.trial.TrialState.COMPLETE:
            raise PickError(f"--trial {number} is {trial.state.name}, not COMPLETE: it has no final validation "
                            f"error to stand on; pick a complete trial or leave --trial out for the best one")
        size = _size(trial)
        if size > cap:
            raise PickError(f"--trial {number} has {size} bytes of weights, over the study's cap of {cap} bytes "
                            f"({cap / BYTES_PER_KB:g} KB); it cannot ship. Leave --trial out or use --max-kb")
        if not is_usable(trial):
            raise PickError(f"--trial {number} has status {trial.user_attrs.get('status')!r} and error "
                            f"{trial_error(trial)}: nothing to export")
        return trial

    limit = cap
    if max_kb is not None:
        limit = min(cap, max_bytes(max_kb))
    best = best_feasible(trials, limit)
    if best is None:
        states = {}
        for t in trials:
            states[t.state.name] = states.get(t.state.name, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no trials"
        complete = [t for t in trials if is_usable(t)]
        if complete:
            smallest = min(complete, key=_size)
            raise PickError(
                f"no complete trial within {limit} bytes ({limit / BYTES_PER_KB:g} KB) in study "
                f"{study.study_name!r} ({summary}); the smallest complete one is trial {smallest.number} with "
                f"{_size(smallest)} bytes" + ("; raise --max-kb" if max_kb is not None else ""))
        raise PickError(f"no feasible trial in study {study.study_name!r} ({summary}): none completed within "
                        f"the cap of {cap} bytes; let the search run longer")
    return best


def export_record(study: optuna.Study, trial: optuna.trial.FrozenTrial, storage: str,
                  weights: str | None = None) -> dict:
    """The JSON document for ``trial``: config, search figures, data split, seed, and the weight format to ship
    (``weights``, default the study's)."""
    weights = weights or study_weights(study)
    attrs = trial.user_attrs
    study_attrs = study.user_attrs
    config = attrs.get("config")
    if config is None:
        raise PickError(f"trial {trial.number} has no 'config' user attribute; was it written by runners/search.py?")
    check_fits(Config.from_dict(config), trial.number, weights, study)  # fails loudly on unknown keys, too
    objectives = study_attrs.get("objectives") or (["error"] if len(study.directions) == 1 else ["error", "size"])
    search = {
        "study": study.study_name,
        "storage": storage,
        "trial": trial.number,
        "objectives": objectives,
        "values": trial.values,
        "weights": study_weights(study),  # what the figures below measured
    }
    search.update({key: attrs[key] for key in SEARCH_ATTRS if key in attrs})
    search["weight_kb"] = round(_size(trial) / BYTES_PER_KB, 3)
    # The search trains with the study's seed and the cosine schedule unless a trial records its own.
    search["seed"] = attrs.get("seed", study_attrs.get("seed", 0))
    search["schedule"] = attrs.get("schedule", "cosine")
    if "augmentation" in attrs:
        search["augmentation"] = attrs["augmentation"]
    return {
        "about": "config: what retrain builds and trains (edit it to try a variant); search: the trial's figures "
                 "in the search; data: the split it was validated on. "
                 "Retrain: python runners/retrain.py --config THIS.json --data DIR --out DIR",
        "config": config,
        "search": search,
        "data": {
            "data": study_attrs.get("data", "synthetic"),
            "val_teams": study_attrs.get("val_teams"),
            "val_fraction": study_attrs.get("val_fraction", 0.1),
            "seed": study_attrs.get("seed", 0),
        },
        "seed": search["seed"],
        "max_bytes": study_cap(study),
        "weights": weights,
        "command": study_attrs.get("command"),
    }


def check_fits(cfg: Config, number: int, weights: str, study: optuna.Study) -> None:
    """A trial exported in another format than its study's must fit the cap in that format too."""
    if weights == study_weights(study):
        return
    from search_space.size import measure  # builds the model: torch loads here, only when formats differ

    size, cap = measure(cfg, weights=weights).weight_bytes, study_cap(study)
    if size > cap:
        raise PickError(f"--weights {weights}: trial {number} has {size} bytes of {weights} weights, over the study's "
                        f"cap of {cap} bytes ({cap / BYTES_PER_KB:g} KB); export it as --weights "
                        f"{study_weights(study)} (the study's format) or pick a smaller trial with --max-kb")


def _size(trial: optuna.trial.FrozenTrial) -> int:
    """``trial_weight_bytes``, with a trial of unknown size counted as larger than any cap."""
    size = trial_weight_bytes(trial)
    return sys.maxsize if size is None else size


if __name__ == "__main__":
    sys.exit(run(main, "export"))
