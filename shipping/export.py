"""What a shipped model starts from: the trial of a study to export (``pick_trial``: the best within the cap, one
of at most K KB, or a given number) and the JSON record of it (``export_record``) that retrain, the ablation and a
person read. Torch-free unless a trial is exported in another weight format than its study's (measuring builds
the model)."""
from __future__ import annotations

import sys

import optuna

from search_space.cap import fits, max_bytes, over_cap, within
from search_space.config import BYTES_PER_KB, Config
from studies.attrs import BASELINE_ATTR, SEEDS_ATTR, STATUS
from studies.reader import best_feasible, is_usable, study_cap, study_weights, trial_error, trial_weight_bytes


SEARCH_ATTRS = (STATUS, "val_mean_px", "val_median_px", "val_pck1", "val_pck2", "val_pck3", "val_heatmap_mse",
                SEEDS_ATTR, "weight_bytes", "params", "macs", "epochs", "train_seconds", BASELINE_ATTR)


class PickError(Exception):
    """A request the study cannot satisfy; the message names the bad value and what to do instead."""


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
        if not within(trial_weight_bytes(trial), cap):
            raise PickError(f"--trial {number} has {over_cap(_size(trial), cap, study_weights(study))}, the study's cap; "
                            "it cannot ship. Leave --trial out or use --max-kb")
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
    fit = fits(cfg, study_cap(study), weights)  # builds the model: torch loads here, only when formats differ
    if not fit.ok:
        raise PickError(f"--weights {weights}: trial {number} has {fit.error}, the study's cap; export it as --weights "
                        f"{study_weights(study)} (the study's format) or pick a smaller trial with --max-kb")


def _size(trial: optuna.trial.FrozenTrial) -> int:
    """``trial_weight_bytes``, with a trial of unknown size counted as larger than any cap."""
    size = trial_weight_bytes(trial)
    return sys.maxsize if size is None else size
