"""The reference: the original study's hand designs run in every study, copied from another study of the storage
that ran them the same way (``reference_donors``), queued all at once (``--reference-first``), or one at a time
beside the search (``ReferenceQueue``); a design no model of whose family fits the cap is recorded oversize."""
from __future__ import annotations

import copy

import optuna
from optuna.trial import TrialState

from search_engine.queues import TrialQueue
from search_engine.trial import size_attrs
from search_space.baselines import hand_designs
from search_space.space import SearchSpace, trial_params
from studies.attrs import BASELINE_ATTR, CHOSEN_BY, HAND_DESIGN, OVERSIZE, REUSED_ATTR, STATUS


# What makes two studies' hand-design runs the same run (the training seed, data and split decide it; the weight
# format decides the score).
SAME_RUN = ("data", "split", "max_epochs", "seed", "max_bytes", "objectives", "weights")


def reference_donors(study: optuna.Study) -> dict[str, optuna.trial.FrozenTrial]:
    """Hand designs that another study in the same storage already ran to a result under the same data,
    split, epoch budget, seed, cap and weight format, by name; each trial carries ``reused_from`` (where it ran)."""
    mine = _same_run(study.user_attrs)
    if None in mine.values():
        return {}
    found: dict[str, optuna.trial.FrozenTrial] = {}
    for summary in optuna.get_all_study_summaries(study._storage, include_best_trial=False):
        if summary.study_name == study.study_name or summary.directions != study.directions:
            continue
        if _same_run(summary.user_attrs) != mine:
            continue
        other = optuna.load_study(study_name=summary.study_name, storage=study._storage)
        for trial in other.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            name = trial.user_attrs.get(BASELINE_ATTR)
            if name and name not in found and REUSED_ATTR not in trial.user_attrs:
                trial = copy.deepcopy(trial)
                trial.user_attrs[REUSED_ATTR] = f"study {summary.study_name} trial {trial.number}"
                found[name] = trial
    return found


def _same_run(attrs: dict) -> dict:
    # Studies from before the weight format was recorded were float32.
    return {key: attrs.get(key, "float32" if key == "weights" and "max_bytes" in attrs else None) for key in SAME_RUN}


def enqueue_hand_designs(study: optuna.Study, space: SearchSpace, all_now: bool = True) -> dict[str, int]:
    """Enqueue the original study's designs that the study does not hold yet (with ``all_now=False`` none: they
    are left to ``ReferenceQueue``, which runs them beside the search). A design whose family has no model
    within the cap at all cannot be sampled (the family is not among the space's choices): it is recorded
    PRUNED ``oversize`` at once, as the search records any candidate over the cap. A design another study of
    the storage already ran the same way (``reference_donors``) is copied instead, with ``reused_from`` saying
    where it ran. Returns how many were enqueued, left pending, recorded oversize and reused."""
    counts = {"enqueued": 0, "pending": 0, "oversize": 0, "reused": 0}
    donors = reference_donors(study)
    for name, cfg in _missing_hand_designs(study).items():
        if name in donors:  # run already, on the same data, split, budget, seed and cap: copy, do not retrain
            donor = donors[name]
            study.add_trial(optuna.trial.create_trial(
                state=donor.state, values=donor.values, params=donor.params, distributions=donor.distributions,
                intermediate_values=donor.intermediate_values, user_attrs=donor.user_attrs))
            counts["reused"] += 1
        elif cfg.family not in space.families():  # oversize: no model of its family fits
            attrs, _ = size_attrs(cfg, space.max_bytes, space.weights)
            study.add_trial(optuna.trial.create_trial(
                state=TrialState.PRUNED, user_attrs={BASELINE_ATTR: name, CHOSEN_BY: HAND_DESIGN, **attrs}))
            counts["oversize"] += 1
        elif all_now:  # a design over the cap is pruned by the trial, before training
            _enqueue(study, name, cfg)
            counts["enqueued"] += 1
        else:
            counts["pending"] += 1
    return counts


def _missing_hand_designs(study: optuna.Study) -> dict:
    present = {t.user_attrs.get(BASELINE_ATTR) for t in study.get_trials(deepcopy=False)}
    return {name: cfg for name, cfg in hand_designs().items() if name not in present}


def _enqueue(study: optuna.Study, name: str, cfg) -> None:
    study.enqueue_trial(trial_params(cfg), user_attrs={BASELINE_ATTR: name})


class ReferenceQueue(TrialQueue):
    """The hand designs beside the search: call before each trial is asked for (``maybe_enqueue``, or as an
    ``optimize`` callback). The next hand design is queued when none is waiting or running and the hand designs
    have had no more trials than the sampler: with two workers one runs the reference while the other searches;
    with one they alternate. Stateless (the study says what ran), so a resumed search picks up where it was."""

    def __init__(self, space: SearchSpace, target: int | None = None):
        self.space, self.target = space, target

    def maybe_enqueue(self, study: optuna.Study) -> str | None:
        trials = study.get_trials(deepcopy=False)
        trained = [t for t in trials if BASELINE_ATTR in t.user_attrs and REUSED_ATTR not in t.user_attrs
                   and t.user_attrs.get(STATUS) != OVERSIZE]
        if any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trained):
            return None
        if len(trained) > sum(BASELINE_ATTR not in t.user_attrs for t in trials):
            return None  # the sampler's turn
        pending = [(name, cfg) for name, cfg in _missing_hand_designs(study).items()
                   if cfg.family in self.space.families()]
        if not pending:
            return None
        name, cfg = pending[0]
        _enqueue(study, name, cfg)
        return name
