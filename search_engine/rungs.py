"""The search's successive halving: rungs in training seconds, and early trials judged against the hand designs.

Optuna's ``SuccessiveHalvingPruner`` (rungs at epochs 1, 3, 9; at a rung a trial goes on if it is in the best
third of the trials that reached it) has two blind spots in a study's first hour (docs/decisions.md, "The first
hour"):

- **Nothing to judge by.** With fewer than three trials at a rung only the best goes on, and the first trial to
  reach a rung always does: the first sampled trials train every epoch, whatever they are worth. Here, while
  fewer than ``reduction_factor`` sampled trials reached a rung, the hand designs' errors there join the pool:
  a trial goes on only if it is in the best third of what is known. A trial that reaches a rung before any
  other trial has (with two workers, a sampled trial is often a second ahead of the hand design beside it) is
  judged there as soon as one has, at its next epochs, until it reaches the next rung
  (``RungPruner`` keeps such rungs in the trial's user attribute ``unjudged_rungs``).
- **An epoch is not a price.** A ResNet at batch size 4 trains an epoch in three times the seconds of most
  trials. With ``unit="seconds"`` the rungs are training seconds (the median first epoch x 1, 3, 9, the
  study's own pace), and a trial's value at a rung is its error at the first epoch that ended at or after it:
  a slow trial is compared, at equal cost, with what the fast ones reached in that time.

Only sampled trials that compete are peers: not the hand designs (the reference until peers exist), not fair
exploration's trials (they must reach the end: ``EpochReporter.exempt``), not the starting points (designs
tuned elsewhere, ``search_space/start.py``, which pass the rungs too: as a peer the first stopped nearly every
early trial).
"""
from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial

from studies.attrs import BASELINE_ATTR, CHOSEN_BY, FAIR, SECONDS_ATTR, STARTING, UNJUDGED_ATTR

UNITS = ("seconds", "epochs")


@dataclass(frozen=True)
class Curve:
    """A trial's validation error and cumulative training seconds after each epoch."""

    errors: tuple[float, ...]
    seconds: tuple[float, ...] | None = None  # None: not known (only epochs can be compared)

    @classmethod
    def of(cls, trial: FrozenTrial) -> "Curve | None":
        """The trial's curve (the errors it reported at steps 1, 2, ..., or its ``history``), None before its first epoch. A trial
        recorded before seconds were (only its total ``train_seconds``) is taken to have trained at an even pace."""
        reported = trial.intermediate_values
        errors = tuple(itertools.takewhile(lambda e: e is not None,
                                           (reported.get(step) for step in itertools.count(1))))
        errors = errors or tuple(trial.user_attrs.get("history") or ())  # a trial copied without its reports
        if not errors:
            return None
        seconds = tuple(trial.user_attrs.get(SECONDS_ATTR) or ())
        if len(seconds) < len(errors):
            total = trial.user_attrs.get("train_seconds")
            seconds = None if total is None else tuple(total * (i + 1) / len(errors) for i in range(len(errors)))
        return cls(errors, seconds if seconds is None else seconds[:len(errors)])

    def value_at(self, rung: float, unit: str) -> float | None:
        """The error at the first epoch that ended at or after ``rung`` (an epoch or a second), None if none has."""
        if unit == "epochs":
            return self.errors[int(rung) - 1] if len(self.errors) >= rung else None
        return next((e for e, s in zip(self.errors, self.seconds) if s >= rung), None)

    def crossed(self, rungs: list[float], unit: str) -> list[float]:
        """The rungs its last epoch reached (a slow epoch may pass more than one)."""
        if unit == "epochs":
            return [r for r in rungs if r == len(self.errors)]
        before = self.seconds[-2] if len(self.seconds) > 1 else 0.0
        return [r for r in rungs if before < r <= self.seconds[-1]]


def epoch_rungs(max_epochs: int, reduction_factor: int) -> list[int]:
    """Epochs 1, rf, rf^2, ... below ``max_epochs``: the rungs of every stopping rule (this one, the Pareto one)."""
    points, epoch = [], 1
    while epoch < max_epochs:
        points.append(epoch)
        epoch *= reduction_factor
    return points


def rung_points(max_epochs: int, reduction_factor: int, unit: str, first_epoch_seconds: float | None = None) -> list[float]:
    """``epoch_rungs``; in seconds, those multiples of the typical first epoch."""
    points = [float(epoch) for epoch in epoch_rungs(max_epochs, reduction_factor)]
    if unit == "epochs":
        return points
    return [p * first_epoch_seconds for p in points] if first_epoch_seconds else []


def stops_at(mine: float, peers: list[float], references: list[float], reduction_factor: int) -> bool:
    """Successive halving's rule at one rung: ``mine`` goes on if it is in the best 1/rf of the pool (itself
    included; with fewer than rf values, only the best goes on, as Optuna does). The pool is the peers'
    values, with the references' joined while fewer than ``reduction_factor`` peers reached the rung."""
    pool = list(peers) + (list(references) if len(peers) < reduction_factor else []) + [mine]
    index = max(len(pool) // reduction_factor - 1, 0)
    return mine > sorted(pool)[index]


@dataclass(frozen=True)
class Judgement:
    stop: float | None  # the rung at which the trial stops, None when it goes on
    unjudged: tuple[int, ...] = ()  # indices of the rungs it reached with nothing else there yet: judged later


def judge(mine: Curve, peers: list[Curve], references: list[Curve], max_epochs: int, reduction_factor: int,
          unit: str, unjudged: tuple[int, ...] = ()) -> Judgement:
    """Whether ``mine`` stops after its last epoch: at each rung its last epoch crossed, and at each rung of
    ``unjudged`` (indices into the rungs, from earlier calls' ``Judgement.unjudged``) while it has not crossed a
    later rung. A rung that no other trial has reached yet is not judged: it is returned in ``unjudged``."""
    pace = None
    if unit == "seconds":
        if mine.seconds is None:
            return Judgement(None)
        peers = [c for c in peers if c.seconds is not None]
        references = [c for c in references if c.seconds is not None]
        pace = statistics.median(c.seconds[0] for c in [mine, *peers, *references])
    points = rung_points(max_epochs, reduction_factor, unit, pace)
    crossed = [points.index(r) for r in mine.crossed(points, unit)]
    # A rung waits for company only until the trial reaches the next one.
    todo = crossed if crossed else [i for i in unjudged if i < len(points)]
    waiting = []
    for index in todo:
        rung = points[index]
        at = [v for v in (c.value_at(rung, unit) for c in peers) if v is not None]
        known = [v for v in (c.value_at(rung, unit) for c in references) if v is not None]
        if not at and not known:
            waiting.append(index)
        elif stops_at(mine.value_at(rung, unit), at, known, reduction_factor):
            return Judgement(rung)
    return Judgement(None, tuple(waiting))


def competes(trial: FrozenTrial | optuna.Trial) -> bool:
    """Whether a sampled trial meets the rungs, judged there and a peer of the others: not fair exploration's, not a
    starting point (both pass the rungs)."""
    return trial.user_attrs.get(CHOSEN_BY) not in (FAIR, STARTING)


class RungPruner(optuna.pruners.BasePruner):
    """``judge`` as an Optuna pruner, on the errors trials report (``trial.report`` at epochs 1, 2, ...) and the
    training seconds they record (user attribute ``seconds``, set before ``should_prune`` is asked). The reference is the trials marked ``baseline``; fair
    exploration's trials never stop here and are no peers (they would lower the bar); nor is the starting point."""

    def __init__(self, max_epochs: int, reduction_factor: int = 3, unit: str = "seconds"):
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
        self.max_epochs, self.reduction_factor, self.unit = max_epochs, reduction_factor, unit

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        mine = Curve.of(trial)
        if mine is None:
            return False
        peers, references, unjudged = [], [], ()
        for other in study.get_trials(deepcopy=False):
            if other.number == trial.number:
                # The storage's copy: the asking trial's own (``trial``) can be older than what the last call wrote.
                unjudged = tuple(other.user_attrs.get(UNJUDGED_ATTR, ()))
            curve = Curve.of(other) if other.number != trial.number else None
            if curve is None:
                continue
            if BASELINE_ATTR in other.user_attrs:
                references.append(curve)
            elif competes(other):
                peers.append(curve)
        verdict = judge(mine, peers, references, self.max_epochs, self.reduction_factor, self.unit, unjudged)
        if verdict.unjudged != unjudged:  # kept in the storage, not in this object: on Ray each epoch may ask another
            study._storage.set_trial_user_attr(trial._trial_id, UNJUDGED_ATTR, list(verdict.unjudged))
        return verdict.stop is not None

