"""Export one trial of a search as a JSON file a person can read, edit and retrain.

    python runners/export.py --study NAME [--storage URL] [--trial N | --max-kb K] --out best.json

Default: the best feasible trial (COMPLETE, weights within the study's cap). ``--max-kb K`` picks the most
accurate trial of at most K KB (the way to walk a multi-objective study's error/size front); ``--trial N``
takes trial number N as it is, if it completed within the cap. A trial over the cap is never exported.

The file holds the trial's ``config`` (the only thing retrain needs; edit it to try a variant), the search's
figures for it (``search``), the data split (``data``) and the training seed, so that

    python runners/retrain.py --config best.json --data DIR --out model/

retrains it on the same split, and ``--reproduce`` repeats the trial's own run.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import optuna

from search_space.config import Config
from search_space.size import BYTES_PER_KB, DEFAULT_MAX_KB, max_bytes
from runners.cli import (DEFAULT_STORAGE, UserError, check_out_file, check_storage, doc_parser, positive_float, run,
                         sqlite_path)

SEARCH_ATTRS = ("status", "val_mean_px", "val_median_px", "val_pck1", "val_pck2", "val_pck3", "val_heatmap_mse",
                "weight_bytes", "params", "macs", "epochs", "train_seconds", "baseline")


class ExportError(Exception):
    """A request the study cannot satisfy; the message names the bad value and what to do instead."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = check_out_file(args.out, force=args.force, inputs=[p for p in [sqlite_path(args.storage)] if p])
    try:
        study = load_study(args.storage, args.study)
        trial = pick_trial(study, number=args.trial, max_kb=args.max_kb)
        record = export_record(study, trial, args.storage)
    except (ExportError, ValueError) as error:
        raise UserError(str(error)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    search = record["search"]
    print(f"trial {trial.number} of study {study.study_name!r}: {search['val_mean_px']:.3f} px validation error, "
          f"{search['weight_bytes']} bytes ({search['weight_bytes'] / BYTES_PER_KB:.1f} KB)")
    print(f"wrote {out}; retrain it with: python runners/retrain.py --config {out} --data DIR --out DIR")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = doc_parser(__doc__)
    parser.add_argument("--study", help="study name; may be left out when the storage holds one study")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument("--trial", type=int, help="export this trial number instead of the best one")
    pick.add_argument("--max-kb", type=positive_float,
                      help="export the most accurate trial of at most this many KB of weights (1 KB = 1024 bytes)")
    parser.add_argument("--out", default="best.json", help="JSON file to write (default best.json; an existing file "
                                                          "only with --force, a database never)")
    parser.add_argument("--force", action="store_true", help="write over --out if it exists")
    return parser.parse_args(argv)


def load_study(storage: str, name: str | None) -> optuna.Study:
    check_storage(storage, must_exist=True)
    try:
        names = optuna.get_all_study_names(storage=storage)
    except Exception as error:  # sqlalchemy and Optuna raise many kinds; the user needs the URL and the cause
        raise ExportError(f"cannot read storage {storage!r}: {str(error).splitlines()[0][:200]}") from None
    if not names:
        raise ExportError(f"--storage {storage} holds no study; run runners/search.py first")
    if name is None:
        if len(names) > 1:
            raise ExportError(f"--storage {storage} holds {len(names)} studies; pick one with --study: "
                              + ", ".join(sorted(names)))
        name = names[0]
    elif name not in names:
        raise ExportError(f"--study {name!r} is not in {storage}; its studies: {', '.join(sorted(names))}")
    return optuna.load_study(study_name=name, storage=storage)


def study_cap(study: optuna.Study) -> int:
    return int(study.user_attrs.get("max_bytes", max_bytes(DEFAULT_MAX_KB)))


def pick_trial(study: optuna.Study, number: int | None = None, max_kb: float | None = None) -> optuna.trial.FrozenTrial:
    """The trial to export: ``number``, or the lowest validation error within the cap (and ``max_kb``)."""
    cap = study_cap(study)
    trials = study.get_trials(deepcopy=False)
    if number is not None:
        found = [t for t in trials if t.number == number]
        if not found:
            numbers = [t.number for t in trials]
            span = f"{min(numbers)}..{max(numbers)}" if numbers else "none"
            raise ExportError(f"--trial {number}: study {study.study_name!r} has no such trial (trials {span})")
        trial = found[0]
        if trial.state != optuna.trial.TrialState.COMPLETE:
            raise ExportError(f"--trial {number} is {trial.state.name}, not COMPLETE: it has no final validation "
                              f"error to stand on; pick a complete trial or leave --trial out for the best one")
        size = _weight_bytes(trial)
        if size > cap:
            raise ExportError(f"--trial {number} has {size} bytes of weights, over the study's cap of {cap} bytes "
                              f"({cap / BYTES_PER_KB:g} KB); it cannot ship. Leave --trial out or use --max-kb")
        if not _usable(trial):
            raise ExportError(f"--trial {number} has status {trial.user_attrs.get('status')!r} and error "
                              f"{_error(trial)}: nothing to export")
        return trial

    limit = cap
    if max_kb is not None:
        limit = min(cap, max_bytes(max_kb))
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and _usable(t)]
    feasible = [t for t in complete if _weight_bytes(t) <= limit]
    if not feasible:
        states = {}
        for t in trials:
            states[t.state.name] = states.get(t.state.name, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no trials"
        if complete:
            smallest = min(complete, key=_weight_bytes)
            raise ExportError(
                f"no complete trial within {limit} bytes ({limit / BYTES_PER_KB:g} KB) in study "
                f"{study.study_name!r} ({summary}); the smallest complete one is trial {smallest.number} with "
                f"{_weight_bytes(smallest)} bytes" + ("; raise --max-kb" if max_kb is not None else ""))
        raise ExportError(f"no feasible trial in study {study.study_name!r} ({summary}): none completed within "
                          f"the cap of {cap} bytes; let the search run longer")
    return min(feasible, key=lambda t: (_error(t), _weight_bytes(t), t.number))


def export_record(study: optuna.Study, trial: optuna.trial.FrozenTrial, storage: str) -> dict:
    """The JSON document for ``trial``: config, search figures, data split, seed."""
    attrs = trial.user_attrs
    study_attrs = study.user_attrs
    config = attrs.get("config")
    if config is None:
        raise ExportError(f"trial {trial.number} has no 'config' user attribute; was it written by runners/search.py?")
    Config.from_dict(config)  # fails loudly on keys this version does not know
    objectives = study_attrs.get("objectives") or (["error"] if len(study.directions) == 1 else ["error", "size"])
    search = {
        "study": study.study_name,
        "storage": storage,
        "trial": trial.number,
        "objectives": objectives,
        "values": trial.values,
    }
    search.update({key: attrs[key] for key in SEARCH_ATTRS if key in attrs})
    search["weight_kb"] = round(_weight_bytes(trial) / BYTES_PER_KB, 3)
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
        "command": study_attrs.get("command"),
    }


def _weight_bytes(trial: optuna.trial.FrozenTrial) -> int:
    size = trial.user_attrs.get("weight_bytes")
    if size is None and "config" in trial.user_attrs:
        from search_space.size import measure  # only for trials that predate the attribute

        size = measure(Config.from_dict(trial.user_attrs["config"])).weight_bytes
    return int(size) if size is not None else sys.maxsize


def _error(trial: optuna.trial.FrozenTrial) -> float:
    # The first objective is the validation mean error in both kinds of study.
    value = trial.values[0] if trial.values else trial.user_attrs.get("val_mean_px")
    return float(value) if value is not None else math.inf


def _usable(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.user_attrs.get("status", "ok") not in ("diverged", "oversize") and math.isfinite(_error(trial))


if __name__ == "__main__":
    sys.exit(run(main, "export"))
