"""Fair exploration: the top-level choices the original study's questions compare get their share of trials.

TPE spends a study on the shape it finds best (on the shared data 177 of 180 sampled trials were U-Nets), so
the questions (ResNet or U-Net; does batch norm help, per family; which head, with and without batch norm)
end with "too few trials to say". The rule: until every group a question compares (each family, each
family with and without batch norm, each head with and without batch norm) holds ``MIN_COMPLETE`` trials
that ran every epoch, every ``EVERY``-th trial is chosen by the rule. Its family, batch norm and head are the
cell whose groups are the thinnest (ties in a fixed order); TPE samples the rest of it as usual (width,
depth, optimizer, learning rate ...). The other trials, and every trial once the groups are full, are TPE's.

A fair trial carries ``chosen_by = "fair share"``. It does not compete at successive halving's rungs (it
would mostly be stopped there and never answer its question); the reference bar still stops it when it is
hopeless. The rest of the budget goes where TPE finds the best.
"""
from __future__ import annotations

import itertools

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives.study_reader import finished
from search_space.config import HEADS

CHOSEN_BY = "chosen_by"
FAIR = "fair share"
MIN_COMPLETE = 3  # analysis.questions.MIN_GROUP: a group with fewer is "too few to say"
EVERY = 3  # at most every third trial is chosen by the rule


def groups(family: str, batch_norm: bool, head: str) -> tuple[tuple, ...]:
    """The question groups a trial with these choices counts toward."""
    return (("family", family), ("family-bn", family, batch_norm), ("head-bn", head, batch_norm))


def _choices(trial: FrozenTrial) -> tuple[str, bool, str] | None:
    params = trial.params or {}
    config = trial.user_attrs.get("config") or {}
    family = params.get("family", config.get("family"))
    batch_norm = params.get("batch_norm", config.get("batch_norm"))
    head = params.get("head", config.get("head"))
    if family is None or batch_norm is None or head is None:
        fixed = trial.system_attrs.get("fixed_params", {})  # a waiting (enqueued) trial
        family, batch_norm, head = fixed.get("family"), fixed.get("batch_norm"), fixed.get("head")
    return None if family is None or batch_norm is None or head is None else (family, bool(batch_norm), head)


def group_counts(trials: list[FrozenTrial], max_epochs: int) -> dict[tuple, int]:
    """Per group: trials that ran every epoch and completed, or whose result the reference bar settled (a
    collapsed run answers its question: it collapses; without this a group that always collapses would
    claim every third trial forever), plus fair trials still waiting or running (so the rule does not ask
    twice for one cell)."""
    counts: dict[tuple, int] = {}
    for trial in trials:
        full = ((trial.state == TrialState.COMPLETE and trial.user_attrs.get("epochs") == max_epochs)
                or (trial.state == TrialState.PRUNED and "stopped_by" in trial.user_attrs))
        pending = trial.state in (TrialState.WAITING, TrialState.RUNNING) and trial.user_attrs.get(CHOSEN_BY) == FAIR
        choices = _choices(trial)
        if (full or pending) and choices is not None:
            for group in groups(*choices):
                counts[group] = counts.get(group, 0) + 1
    return counts


def next_cell(families: list[str], counts: dict[tuple, int]) -> tuple[str, bool, str] | None:
    """The (family, batch norm, head) whose groups are the thinnest, or None when every group is full."""
    best, best_key = None, None
    for family, batch_norm, head in itertools.product(sorted(families), (False, True), HEADS):
        short = [MIN_COMPLETE - counts.get(group, 0) for group in groups(family, batch_norm, head)]
        if max(short) <= 0:
            continue
        key = (-sum(max(s, 0) for s in short), -max(short))
        if best_key is None or key < best_key:
            best, best_key = (family, batch_norm, head), key
    return best


class FairShare:
    """Call before each trial is asked for (``maybe_enqueue``): enqueues a fair trial when it is its turn.

    ``families``: the families the study's space samples (those with a model within the cap).
    """

    def __init__(self, families: list[str], max_epochs: int, target: int | None = None):
        self.families, self.max_epochs, self.target = list(families), max_epochs, target

    def __call__(self, study: optuna.Study, trial: FrozenTrial | None = None) -> None:
        """As an Optuna callback: after each trial, the next one's turn (none once the study holds ``target``
        finished trials, so no fair trial is left waiting when the search ends)."""
        if self.target is None or finished(study) < self.target:
            self.maybe_enqueue(study)

    def maybe_enqueue(self, study: optuna.Study) -> tuple[str, bool, str] | None:
        trials = study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return None  # hand designs or an earlier fair trial go first
        sampled = [t for t in trials if "baseline" not in t.user_attrs]
        fair = sum(t.user_attrs.get(CHOSEN_BY) == FAIR for t in sampled)
        if (fair + 1) * EVERY > len(sampled) + 1:
            # Not its turn: the last of every EVERY sampled trials, so a study's first trials are the sampler's
            # (its random start-up spreads over the families anyway; the first hour wants good models first).
            return None
        cell = next_cell(self.families, group_counts(trials, self.max_epochs))
        if cell is not None:
            family, batch_norm, head = cell
            study.enqueue_trial({"family": family, "batch_norm": batch_norm, "head": head},
                                user_attrs={CHOSEN_BY: FAIR})
        return cell
