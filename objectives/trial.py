"""The thin adapter between an Optuna trial and ``train``: trial -> config -> size check -> train ->
report / prune -> user attributes (in an int8 study, the trained model is quantized after training and scored
int8: ``int8_metrics``).

Every path through a trial leaves the same record (``record_size``, ``record_result``) so the dashboard, the
analysis and the export read one format whoever ran the trial (the in-process runner or a Ray worker).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from cones.augment import AugmentConfig
from cones.types import ConeSet
from objectives.metrics import Metrics
from objectives.quantize import post_training
from studies.attrs import SECONDS_ATTR
from objectives.rungs import competes, epoch_rungs
from studies.reader import pareto_ranks
from objectives.train import TrainResult, evaluate, train
from search_space.config import Config
from search_space.receptive import receptive_field
from search_space.size import BYTES_PER_KB, measure
from search_space.space import SearchSpace, sample_config
from studies.attrs import (BASELINE_ATTR, CHOSEN_BY, FAIR, HAND_DESIGN, INTERRUPTED, RECEPTIVE_FIELD_ATTR, SAMPLER,
                           SEEDS_ATTR, STARTING)

# The reference bar (single objective): from epoch SETTLE_EPOCHS on, any trial, a hand design included, stops
# when its error is more than HOPELESS_FACTOR times the best error another trial had at the same epoch.
# Evidence in docs/decisions.md ("The first hour"): collapsed designs end at 22-42 px, far from the rest.
HOPELESS_FACTOR = 3.0
SETTLE_EPOCHS = 2


class TrialDiverged(RuntimeError):
    """The loss became NaN or infinite: the trial is recorded FAIL with the reason and the study goes on."""


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of one study shares."""

    max_bytes: int
    max_epochs: int
    objectives: tuple[str, ...] = ("error",)  # or ("error", "size")
    seed: int = 0
    threads: int | None = None
    reduction_factor: int = 3  # rungs at 1, 3, 9, ... epochs (the pruner and the multi-objective rule)
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    reference_bar: bool = True  # stop settled trials (``reference_bar``); off with --no-early-stopping
    weights: str = "float32"  # what the cap counts and the score measures: "int8" quantizes each trained trial
    # Successive halving's rungs: "epochs" or "seconds" (objectives.rungs: early trials judged against the hand
    # designs), or "optuna" (Optuna's SuccessiveHalvingPruner, the rule before issue 16). Why epochs:
    # docs/decisions.md, "The first hour".
    rungs: str = "epochs"
    # A trial that beats the study's best is trained again with the next seed and scored by the two seeds' mean
    # (``confirm_below``), so the best is not one seed's luck; off with --no-confirm. Why: docs/decisions.md,
    # "The first hour".
    confirm: bool = True
    # Validation on several teams scores the mean of the per-team errors (each camera counts once, not by its crop
    # count); search sets it when --val-teams names more than one team.
    val_by_team: bool = False

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1


def directions(objectives: tuple[str, ...]) -> list[str]:
    return ["minimize"] * len(objectives)


def metric_names(objectives: tuple[str, ...]) -> list[str]:
    names = {"error": "val_mean_px", "size": "weight_kb"}
    return [names[o] for o in objectives]


class Objective:
    """``study.optimize(Objective(settings, space, train_set, val_set))``."""

    def __init__(self, settings: TrialSettings, space: SearchSpace, train_set: ConeSet, val_set: ConeSet):
        self.settings, self.space = settings, space
        self.train_set, self.val_set = train_set, val_set

    def __call__(self, trial: optuna.Trial):
        cfg = sample_config(trial, self.space)
        size = record_size(trial, cfg, self.settings.max_bytes, self.settings.weights)
        try:
            result = train_trial(cfg, self.train_set, self.val_set, self.settings,
                                 on_epoch=EpochReporter(trial, self.settings, size.kb))
            if self.settings.weights == "int8" and result.status == "ok":
                result = int8_scored(trial, result, int8_metrics(result, cfg, self.settings, self.train_set,
                                                                 self.val_set))
            if confirms(result, confirm_below(trial, self.settings)):
                second = train_second_seed(cfg, self.train_set, self.val_set, self.settings)
                result = confirmed(trial, result, second, self.settings.seed)
        except KeyboardInterrupt:
            # Optuna records the trial FAIL; say why, as the Ray runner does for the trials it stops.
            trial.set_user_attr("status", INTERRUPTED)
            trial.set_user_attr("reason", "the search was interrupted (Ctrl-C or SIGTERM)")
            raise
        return record_result(trial, result, self.settings, size.kb)


def int8_metrics(result: TrainResult, cfg: Config, settings: TrialSettings, train_set: ConeSet,
                 val_set: ConeSet) -> Metrics:
    """An int8 study's score of a trial trained to the end: its float model quantized after training (calibrated
    on training crops, ``objectives.quantize.post_training``), on the validation set. The cheapest honest int8
    figure: a calibration pass and an evaluation, seconds, against minutes of quantization-aware epochs."""
    return evaluate(post_training(result.model, cfg, train_set, seed=settings.seed), cfg, val_set,
                    by_team=settings.val_by_team)


def int8_scored(trial, result: TrainResult, int8: Metrics) -> TrainResult:
    """The result an int8 trial records: its value and ``val_*`` figures are the int8 model's, the float model's
    error stays in ``val_float32_mean_px``, and the learning curve (``history``, what early stopping compared)
    stays float."""
    trial.set_user_attr("val_float32_mean_px", result.metrics.mean_px)
    return dataclasses.replace(result, metrics=int8)


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


def train_trial(cfg: Config, train_set: ConeSet, val_set: ConeSet, settings: TrialSettings, seed_offset: int = 0,
                on_epoch=None) -> TrainResult:
    """One run of a trial as the study's settings say (in process and in a Ray worker), ``on_epoch`` called after
    every validated epoch."""
    return train(cfg, train_set, val_set, settings.max_epochs, seed=settings.seed + seed_offset,
                 augmentation=settings.augmentation, threads=settings.threads, on_epoch=on_epoch,
                 val_by_team=settings.val_by_team)


def train_second_seed(cfg: Config, train_set: ConeSet, val_set: ConeSet, settings: TrialSettings) -> TrainResult:
    """A new best's run with the next seed (in process and in a Ray worker): to the end, nothing reported."""
    return train_trial(cfg, train_set, val_set, settings, seed_offset=1)


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


def size_attrs(cfg: Config, max_bytes: int, weights: str = "float32") -> tuple[dict, object]:
    """The record of a candidate's config and exact size in ``weights`` (and, over the cap, its oversize status),
    and the size: what ``record_size`` stores on a trial and what a hand design that cannot be sampled is recorded
    with."""
    size = measure(cfg, weights=weights)
    attrs = {"config": cfg.to_dict(), "family": cfg.family, "weight_bytes": size.weight_bytes,
             "params": size.params, "macs": size.macs, RECEPTIVE_FIELD_ATTR: list(receptive_field(cfg))}
    if size.weight_bytes > max_bytes:
        attrs.update(status="oversize", reason=f"{size.weight_bytes} weight bytes > cap {max_bytes}")
    return attrs, size


def record_size(trial: optuna.Trial, cfg: Config, max_bytes: int, weights: str = "float32"):
    """Store the config and its exact size; an oversize candidate ends here, PRUNED, never trained."""
    attrs, size = size_attrs(cfg, max_bytes, weights)
    if CHOSEN_BY not in trial.user_attrs:  # which rule chose its family, batch norm and head
        attrs[CHOSEN_BY] = HAND_DESIGN if BASELINE_ATTR in trial.user_attrs else SAMPLER
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if size.weight_bytes > max_bytes:
        raise optuna.TrialPruned(f"oversize: {size.weight_bytes} bytes > {max_bytes}")
    return size


def record_result(trial: optuna.Trial, result: TrainResult, settings: TrialSettings, kb: float):
    trial.set_user_attr("epochs", result.epochs)
    trial.set_user_attr("train_seconds", round(result.train_seconds, 2))
    trial.set_user_attr("history", result.history)
    trial.set_user_attr("status", result.status)
    if result.status == "diverged":
        trial.set_user_attr("reason", result.reason)
        raise TrialDiverged(result.reason)
    record_metrics(trial, result.metrics)
    if result.status == "stopped":
        raise optuna.TrialPruned(f"stopped early after epoch {result.epochs}")
    error = result.metrics.mean_px
    return (error, kb) if settings.multi_objective else error


def record_metrics(trial: optuna.Trial, metrics: Metrics) -> None:
    for key in ("mean_px", "median_px", "pck1", "pck2", "pck3", "heatmap_mse"):
        trial.set_user_attr(f"val_{key}", getattr(metrics, key))
    trial.set_user_attr("val_per_keypoint_px", list(metrics.per_keypoint_px))


class EpochReporter:
    """The ``on_epoch`` callback: records the learning curve and decides whether to stop early.

    Single objective: the reference bar (``reference_bar``), then Optuna's pruner (``trial.report`` /
    ``should_prune``). Multi-objective, where Optuna supports neither, ``pareto_rung_stop``. The hand designs
    are the reference: only the reference bar stops them (a collapsed design's result is settled long before
    its last epoch, and its error there is what the study records for it). They do not count among the
    competitors at a rung (they never ask the pruner, and are left out of the Pareto peers): their errors are
    mostly far behind and would only lower the bar for sampled trials.
    """

    def __init__(self, trial: optuna.Trial, settings: TrialSettings, kb: float):
        self.trial, self.settings, self.kb = trial, settings, kb
        self.history: list[float] = []
        self.seconds: list[float] = []  # cumulative training seconds at each epoch's end (the rungs' cost)
        self.started = time.monotonic()
        # The reference, the trials fair exploration chose to answer the questions, and the starting points (known
        # designs, there for their result; search_space/start.py) do not compete at the rungs; fair trials are not
        # stopped by the reference bar either (a question compares finished trials).
        self.fair = trial.user_attrs.get(CHOSEN_BY) == FAIR
        self.exempt = BASELINE_ATTR in trial.user_attrs or not competes(trial)

    def __call__(self, epoch: int, metrics: Metrics, seconds: float | None = None) -> bool:
        """``seconds``: training seconds so far, as the worker measured them (default: since this reporter was made,
        just before training started)."""
        self.history.append(metrics.mean_px)
        self.seconds.append(round(time.monotonic() - self.started if seconds is None else seconds, 2))
        self.trial.set_user_attr("history", self.history)
        self.trial.set_user_attr(SECONDS_ATTR, self.seconds)
        if epoch >= self.settings.max_epochs:
            # Trained to the end: complete, whatever a pruner would say about the last rung.
            if not self.settings.multi_objective:
                self.trial.report(metrics.mean_px, epoch)
            return False
        if not self.settings.multi_objective:
            self.trial.report(metrics.mean_px, epoch)
            bar = (reference_bar(metrics.mean_px, epoch, self.trial.number, self.trial.study.get_trials(deepcopy=False))
                   if self.settings.reference_bar and not self.fair else None)
            if bar is not None:
                self.trial.set_user_attr("stopped_by", bar)
                return True
            # should_prune is what records a trial's value at a rung, so an exempt trial must not call it.
            return False if self.exempt else self.trial.should_prune()
        if self.exempt or epoch not in epoch_rungs(self.settings.max_epochs, self.settings.reduction_factor):
            return False
        peers = [
            (t.user_attrs["history"][epoch - 1], t.user_attrs["weight_bytes"] / BYTES_PER_KB)
            for t in self.trial.study.get_trials(deepcopy=False)
            if t.number != self.trial.number and len(t.user_attrs.get("history", ())) >= epoch
            and BASELINE_ATTR not in t.user_attrs
        ]
        return pareto_rung_stop((metrics.mean_px, self.kb), peers, self.settings.reduction_factor)


def reference_bar(error: float, epoch: int, number: int, trials: list[optuna.trial.FrozenTrial],
                  factor: float = HOPELESS_FACTOR) -> str | None:
    """Why a trial at ``error`` px after ``epoch`` epochs stops now (its result is settled: far behind what
    another trial had at the same epoch), or None. The starting point sets no bar (``search_space/start.py``)."""
    if epoch < SETTLE_EPOCHS:
        return None
    at_epoch = [(t.user_attrs["history"][epoch - 1], t.number) for t in trials
                if t.number != number and len(t.user_attrs.get("history", ())) >= epoch
                and t.user_attrs.get(CHOSEN_BY) != STARTING]
    if not at_epoch:
        return None
    best, best_number = min(at_epoch)
    if error > factor * best:
        return (f"reference bar: {error:.2f} px after epoch {epoch}, more than {factor:g}x the "
                f"{best:.2f} px of trial {best_number} there")
    return None


def pareto_rung_stop(mine: tuple[float, float], peers: list[tuple[float, float]], reduction_factor: int) -> bool:
    """Successive halving on Pareto ranks (the multi-objective stopping rule).

    At a rung, the trial and every peer that reached the rung are sorted into non-dominated fronts on
    (error at this epoch, size). Fronts are kept from the best down until they hold 1/reduction_factor of
    the trials; a trial outside them stops. With fewer than ``reduction_factor`` peers nothing stops.
    """
    if len(peers) < reduction_factor:
        return False
    points = [mine] + peers
    ranks = pareto_ranks(points)
    keep = math.ceil(len(points) / reduction_factor)
    kept, rank = 0, 0
    while kept < keep:
        kept += ranks.count(rank)
        rank += 1
    return ranks[0] >= rank
