"""Fair exploration: the top-level choices the original study's questions compare get their share of trials.

TPE spends a study on the shape it finds best (on the shared data 177 of 180 sampled trials were U-Nets), so
the questions (ResNet or U-Net; does batch norm help, per family; which head, with and without batch norm;
does batch size matter) end with "too few trials to say". The rule: until every group a question compares
(each family, each family with and without batch norm, each head with and without batch norm, the smallest and
the largest batch sizes) holds ``MIN_COMPLETE`` trials that ran every epoch, every ``EVERY``-th trial is chosen
by the rule. Its family, batch norm and head are the cell whose groups are the thinnest (ties in a fixed
order); TPE samples the rest of it as usual (width, depth, optimizer, learning rate, batch size ...). Once those
groups are full, an end of the batch-size range that is short gets its turns: the batch size is the middle of
that end's doubling bin and TPE samples everything else, so the two ends hold the kind of trial TPE finds good
and compare like with like (fixing the batch size together with the thinnest cell, as the rule did first, filled
both ends of a 200-trial study with linear and sigmoid heads without batch norm: docs/decisions.md, "Fair
exploration"). The other trials, and every trial once the groups are full, are TPE's.

A fair trial carries ``chosen_by = "fair share"``. It trains every epoch: neither successive halving's rungs
nor the reference bar stop it (a stopped trial's error is not the group's answer, and the questions compare
trials trained to the end). A fair trial that diverges settles its group too (it answers "does it collapse?";
without that a group that always diverges would claim every third trial forever). The rest of the budget
goes where TPE finds the best.
"""
from __future__ import annotations

import itertools

import optuna
from optuna.trial import FrozenTrial, TrialState

from search_engine.queues import TrialQueue
from search_space.config import HEADS
from search_space.space import BATCH_SIZE_RANGE
from studies.attrs import BASELINE_ATTR, CHOSEN_BY, DIVERGED, FAIR, STATUS

MIN_COMPLETE = 3  # analysis.questions.MIN_GROUP: a group with fewer is "too few to say"
EVERY = 3  # at most every third trial is chosen by the rule


def doubling_bins(low: int, high: int) -> tuple[tuple[int, int], ...]:
    """``(4, 128)`` -> (4, 7), (8, 15), (16, 31), (32, 63), (64, 128): the search's batch sizes by doubling."""
    bins, start = [], low
    while start * 2 < high:
        bins.append((start, start * 2 - 1))
        start *= 2
    return (*bins, (start, high))


BATCH_BINS = doubling_bins(*BATCH_SIZE_RANGE)
BATCH_ENDS = (BATCH_BINS[0], BATCH_BINS[-1])  # the sides of "batch size hardly matters"


def batch_bin(batch_size: int) -> tuple[int, int]:
    """The doubling bin of ``batch_size`` (the largest for anything beyond the range)."""
    return next((b for b in BATCH_BINS if batch_size <= b[1]), BATCH_BINS[-1])


def bin_middle(bin_: tuple[int, int]) -> int:
    """The batch size a fair trial takes for an end of the range: the bin's geometric middle."""
    return round((bin_[0] * bin_[1]) ** 0.5)


def groups(family: str | None, batch_norm: bool | None, head: str | None,
           batch: tuple[int, int] | None = None) -> tuple[tuple, ...]:
    """The question groups a trial with these choices counts toward (``batch``: its batch size's bin; None for a
    choice not known, as in a waiting fair trial that fixed only its batch size)."""
    found = []
    if family is not None:
        found.append(("family", family))
        if batch_norm is not None:
            found.append(("family-bn", family, batch_norm))
    if head is not None and batch_norm is not None:
        found.append(("head-bn", head, batch_norm))
    if batch in BATCH_ENDS:
        found.append(("batch", batch))
    return tuple(found)


def _choices(trial: FrozenTrial) -> tuple[str | None, bool | None, str | None, tuple[int, int] | None] | None:
    fixed = trial.system_attrs.get("fixed_params", {})  # a waiting (enqueued) trial's
    config = trial.user_attrs.get("config") or {}
    found = {}
    for name in ("family", "batch_norm", "head", "batch_size"):
        for source in (trial.params or {}, config, fixed):
            if source.get(name) is not None:
                found[name] = source[name]
                break
    if not found:
        return None
    batch = batch_bin(int(found["batch_size"])) if "batch_size" in found else None
    batch_norm = bool(found["batch_norm"]) if "batch_norm" in found else None
    return found.get("family"), batch_norm, found.get("head"), batch


def group_counts(trials: list[FrozenTrial], max_epochs: int) -> dict[tuple, int]:
    """Per group: trials that ran every epoch and completed, fair trials that diverged (a settled answer: it
    collapses), plus fair trials still waiting or running (so the rule does not ask twice for one cell)."""
    counts: dict[tuple, int] = {}
    for trial in trials:
        fair = trial.user_attrs.get(CHOSEN_BY) == FAIR
        full = ((trial.state == TrialState.COMPLETE and trial.user_attrs.get("epochs") == max_epochs)
                or (fair and trial.state == TrialState.FAIL and trial.user_attrs.get(STATUS) == DIVERGED))
        pending = fair and trial.state in (TrialState.WAITING, TrialState.RUNNING)
        choices = _choices(trial)
        if (full or pending) and choices is not None:
            for group in groups(*choices):
                counts[group] = counts.get(group, 0) + 1
    return counts


Cell = tuple[str | None, bool | None, str | None, tuple[int, int] | None]


def next_cell(families: list[str], counts: dict[tuple, int]) -> Cell | None:
    """What the next fair trial fixes, or None when every group is full: (family, batch norm, head, None) for the
    cell whose groups are the thinnest; once they are full, (None, None, None, bin) for the thinner short end of
    the batch-size range (TPE picks the rest)."""
    best, best_key = None, None
    for family, batch_norm, head in itertools.product(sorted(families), (False, True), HEADS):
        short = [MIN_COMPLETE - counts.get(group, 0) for group in groups(family, batch_norm, head)]
        if max(short) <= 0:
            continue
        key = (-sum(max(s, 0) for s in short), -max(short))
        if best_key is None or key < best_key:
            best, best_key = (family, batch_norm, head, None), key
    if best is not None:
        return best
    short_ends = [end for end in BATCH_ENDS if counts.get(("batch", end), 0) < MIN_COMPLETE]
    if not short_ends:
        return None
    return None, None, None, min(short_ends, key=lambda end: counts.get(("batch", end), 0))


class FairShare(TrialQueue):
    """Call before each trial is asked for (``maybe_enqueue``): enqueues a fair trial when it is its turn.

    ``families``: the families the study's space samples (those with a model within the cap).
    """

    def __init__(self, families: list[str], max_epochs: int, target: int | None = None):
        self.families, self.max_epochs, self.target = list(families), max_epochs, target

    def maybe_enqueue(self, study: optuna.Study) -> tuple | None:
        trials = study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return None  # hand designs or an earlier fair trial go first
        sampled = [t for t in trials if BASELINE_ATTR not in t.user_attrs]
        fair = sum(t.user_attrs.get(CHOSEN_BY) == FAIR for t in sampled)
        if (fair + 1) * EVERY > len(sampled) + 1:
            # Not its turn: the last of every EVERY sampled trials, so a study's first trials are the sampler's
            # (its random start-up spreads over the families anyway; the first hour wants good models first).
            return None
        cell = next_cell(self.families, group_counts(trials, self.max_epochs))
        if cell is not None:
            family, batch_norm, head, batch = cell
            fixed = {name: value for name, value in (("family", family), ("batch_norm", batch_norm), ("head", head))
                     if value is not None}
            if batch is not None:
                fixed["batch_size"] = bin_middle(batch)
            study.enqueue_trial(fixed, user_attrs={CHOSEN_BY: FAIR})
        return cell
