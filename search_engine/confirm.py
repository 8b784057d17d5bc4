"""Confirmation: a trial that beats the study's best is trained again with the next seed and scored by the two
seeds' mean, so the best is not one seed's luck (in process and on Ray alike; off with --no-confirm). Why:
docs/decisions.md, "The first hour"."""
from __future__ import annotations

import dataclasses
import math

import optuna
from optuna.trial import TrialState

from objectives.metrics import Metrics
from objectives.train import TrainResult
from search_engine.settings import TrialSettings
from studies.attrs import BASELINE_ATTR, SEEDS_ATTR


def confirm_below(trial: optuna.Trial, settings: TrialSettings) -> float | None:
    """The error a trial must beat to be trained again with the next seed: the best complete trial's value (a first
    trial always is). None where no trial is: a hand design (the reference, scored as the original study did), a
    multi-objective or int8 study, or ``settings.confirm`` off."""
    if (not settings.confirm or settings.multi_objective or settings.weights != "float32"
            or BASELINE_ATTR in trial.user_attrs):
        return None
    return min((t.value for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))),
               default=math.inf)


def confirms(result: TrainResult, below: float | None) -> bool:
    return below is not None and result.status == "ok" and result.metrics.mean_px < below


def confirmed(trial: optuna.Trial, first: TrainResult, second: TrainResult, seed: int) -> TrainResult:
    """A trial scored with two seeds: its ``val_*`` figures are the two runs' means (each seed's error in
    ``val_mean_px_by_seed``), its training seconds their sum, its learning curve the first seed's. A second run
    that diverges makes the trial diverged: a config that diverges on one seed in two is no model to ship."""
    trial.set_user_attr(SEEDS_ATTR, [first.metrics.mean_px, second.metrics.mean_px])
    seconds = first.train_seconds + second.train_seconds
    if second.status != "ok":
        reason = f"seed {seed + 1}: {second.reason} (seed {seed}: {first.metrics.mean_px:.3f} px)"
        return dataclasses.replace(first, status=second.status, reason=reason, metrics=second.metrics,
                                   train_seconds=seconds)
    return dataclasses.replace(first, metrics=mean_metrics(first.metrics, second.metrics), train_seconds=seconds)


def mean_metrics(a: Metrics, b: Metrics) -> Metrics:
    return Metrics(*((tuple((x + y) / 2 for x, y in zip(u, v)) if isinstance(u, tuple) else (u + v) / 2)
                     for u, v in zip(dataclasses.astuple(a), dataclasses.astuple(b))))
