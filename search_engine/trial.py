"""The thin adapter between an Optuna trial and ``train``: trial -> config -> size check -> train ->
report / prune -> user attributes (in an int8 study, the trained model is quantized after training and scored
int8: ``int8_metrics``; a new best is confirmed with a second seed: ``search_engine.confirm``).

Every path through a trial leaves the same record (``record_size``, ``record_result``) so the dashboard, the
analysis and the export read one format whoever ran the trial (the in-process runner or a Ray worker).
"""
from __future__ import annotations

import dataclasses
import math
import time

import optuna

from cones.types import ConeSet
from objectives.metrics import Metrics
from objectives.train import TrainResult, evaluate, train
from search_engine.confirm import confirm_below, confirmed, confirms
from search_engine.rungs import competes, epoch_rungs
from search_engine.settings import TrialSettings
from search_space.cap import fits
from search_space.config import BYTES_PER_KB, Config
from search_space.receptive import receptive_field
from search_space.space import SearchSpace, sample_config
from shipping.quantize import post_training
from studies.attrs import (BASELINE_ATTR, CHOSEN_BY, CONFIG, DIVERGED, EPOCHS, FAIR, FAMILY, HAND_DESIGN, HISTORY,
                           INTERRUPTED, MACS, OVERSIZE, PARAMS, REASON, RECEPTIVE_FIELD_ATTR, SAMPLER, SECONDS_ATTR,
                           STARTING, STATUS, STOPPED, STOPPED_BY, TRAIN_SECONDS, VAL_FLOAT32_MEAN_PX, WEIGHT_BYTES)
from studies.reader import pareto_ranks


# The reference bar (single objective): from epoch SETTLE_EPOCHS on, any trial, a hand design included, stops
# when its error is more than HOPELESS_FACTOR times the best error another trial had at the same epoch.
# Evidence in docs/decisions.md ("The first hour"): collapsed designs end at 22-42 px, far from the rest.
HOPELESS_FACTOR = 3.0
SETTLE_EPOCHS = 2


class TrialDiverged(RuntimeError):
    """The loss became NaN or infinite: the trial is recorded FAIL with the reason and the study goes on."""


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
            trial.set_user_attr(STATUS, INTERRUPTED)
            trial.set_user_attr(REASON, "the search was interrupted (Ctrl-C or SIGTERM)")
            raise
        return record_result(trial, result, self.settings, size.kb)


def int8_metrics(result: TrainResult, cfg: Config, settings: TrialSettings, train_set: ConeSet,
                 val_set: ConeSet) -> Metrics:
    """An int8 study's score of a trial trained to the end: its float model quantized after training (calibrated
    on training crops, ``shipping.quantize.post_training``), on the validation set. The cheapest honest int8
    figure: a calibration pass and an evaluation, seconds, against minutes of quantization-aware epochs."""
    return evaluate(post_training(result.model, cfg, train_set, seed=settings.seed), cfg, val_set,
                    by_team=settings.val_by_team)


def int8_scored(trial, result: TrainResult, int8: Metrics) -> TrainResult:
    """The result an int8 trial records: its value and ``val_*`` figures are the int8 model's, the float model's
    error stays in ``val_float32_mean_px``, and the learning curve (``history``, what early stopping compared)
    stays float."""
    trial.set_user_attr(VAL_FLOAT32_MEAN_PX, result.metrics.mean_px)
    return dataclasses.replace(result, metrics=int8)


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


def size_attrs(cfg: Config, max_bytes: int, weights: str = "float32") -> tuple[dict, object]:
    """The record of a candidate's config and exact size in ``weights`` (and, over the cap, its oversize status),
    and the size: what ``record_size`` stores on a trial and what a hand design that cannot be sampled is recorded
    with."""
    fit = fits(cfg, max_bytes, weights)
    size = fit.size
    attrs = {CONFIG: cfg.to_dict(), FAMILY: cfg.family, WEIGHT_BYTES: size.weight_bytes, PARAMS: size.params,
             MACS: size.macs, RECEPTIVE_FIELD_ATTR: list(receptive_field(cfg))}
    if not fit.ok:
        attrs.update({STATUS: OVERSIZE, REASON: fit.reason})
    return attrs, size


def record_size(trial: optuna.Trial, cfg: Config, max_bytes: int, weights: str = "float32"):
    """Store the config and its exact size; an oversize candidate ends here, PRUNED, never trained."""
    attrs, size = size_attrs(cfg, max_bytes, weights)
    if CHOSEN_BY not in trial.user_attrs:  # which rule chose its family, batch norm and head
        attrs[CHOSEN_BY] = HAND_DESIGN if BASELINE_ATTR in trial.user_attrs else SAMPLER
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if attrs.get(STATUS) == OVERSIZE:
        raise optuna.TrialPruned(f"oversize: {size.weight_bytes} bytes > {max_bytes}")
    return size


def record_result(trial: optuna.Trial, result: TrainResult, settings: TrialSettings, kb: float):
    trial.set_user_attr(EPOCHS, result.epochs)
    trial.set_user_attr(TRAIN_SECONDS, round(result.train_seconds, 2))
    trial.set_user_attr(HISTORY, result.history)
    trial.set_user_attr(STATUS, result.status)
    if result.status == DIVERGED:
        trial.set_user_attr(REASON, result.reason)
        raise TrialDiverged(result.reason)
    record_metrics(trial, result.metrics)
    if result.status == STOPPED:
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
        self.trial.set_user_attr(HISTORY, self.history)
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
                self.trial.set_user_attr(STOPPED_BY, bar)
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
