"""Train one candidate and measure it. Imports neither Optuna nor Ray: the search, the Ray workers and the
retrain command all call ``train``.

The whole dataset sits in memory as uint8 tensors; each batch is converted, augmented on the batch,
put channels-last (about twice as fast as NCHW for these small convolutions on CPU) and its heatmap
targets are built on the fly.
"""
from __future__ import annotations

import copy
import functools
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from cones.augment import AugmentConfig, augment
from cones.types import FLIP_PERMUTATION, ConeSet
from objectives.heatmaps import DECODERS, flip_back, gaussian_targets, normalised
from objectives.metrics import Metrics, keypoint_metrics
from search_space.config import Config
from search_space.registry import create_model, memory_format

# on_epoch(epoch, metrics) is called after every epoch (1-based) with the validation metrics (None without a
# validation set); returning True stops training there (the search's pruning).
EpochCallback = Callable[[int, "Metrics | None"], "bool | None"]

EVAL_BATCH = 256


@dataclass
class TrainResult:
    status: str  # "ok", "diverged" (NaN/inf loss) or "stopped" (on_epoch asked to stop)
    metrics: Metrics  # validation metrics of the returned weights
    epochs: int  # epochs trained
    train_seconds: float
    history: list[float] = field(default_factory=list)  # validation mean px after each epoch
    reason: str = ""  # why a run diverged
    model: nn.Module | None = None  # the trained model (best epoch when keep_best)
    best_epoch: int = 0


def train(
    cfg: Config,
    train_set: ConeSet,
    val_set: ConeSet,
    epochs: int,
    *,
    seed: int = 0,
    augmentation: AugmentConfig | None = None,
    on_epoch: EpochCallback | None = None,
    threads: int | None = None,
    schedule: str = "cosine",
    keep_best: bool = False,
    patience: int | None = None,
    ema: float | None = None,
    shape: ShapeLoss | None = None,
    balance_teams: bool = False,
    teacher: nn.Module | None = None,
    distill: float = 1.0,
    val_by_team: bool = False,
) -> TrainResult:
    """Train ``cfg`` from scratch for up to ``epochs`` epochs and evaluate on ``val_set`` after each.

    schedule: "cosine" (learning rate annealed to 1% over ``epochs``) or "constant".
    keep_best: return the weights and metrics of the best validation epoch rather than the last.
    patience: stop when the validation error has not improved for this many epochs.
    ema: decay per step of an exponential moving average of the weights (e.g. 0.998); the average, not
        the raw weights, is evaluated and returned.
    shape: extra loss terms on the expected keypoints (``ShapeLoss``).
    balance_teams: draw each team's crops equally often (with replacement), so the largest training team
        does not set the conventions the model learns.
    teacher: a larger trained model whose heatmaps the model also learns (knowledge distillation): ``distill``
        times the KL divergence from the teacher's spatial softmax to the model's, on every augmented batch.
    val_by_team: score validation as the mean of each team's error (``objectives.metrics.team_mean``), so that
        with several validation teams each camera counts once, not by its crop count.
    val_set None (ship mode, every labelled crop trains): no per-epoch validation, no early stopping; the
        returned metrics are the final model's on the training crops (a fit check, not a generalisation
        estimate) and ``history`` stays empty.
    """
    _check_arguments(train_set, val_set, epochs, ema, keep_best, patience)
    if threads:
        torch.set_num_threads(threads)
    augmentation = AugmentConfig() if augmentation is None else augmentation
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    evaluated, run_epoch = _prepare(cfg, train_set, epochs, generator, augmentation=augmentation, schedule=schedule,
                                    ema=ema, shape=shape, balance_teams=balance_teams, teacher=teacher, distill=distill)

    started = time.perf_counter()
    if val_set is None:
        ending = _epochs_without_validation(run_epoch, evaluated, cfg, train_set, epochs, on_epoch)
    else:
        ending = _epochs_with_validation(run_epoch, evaluated, cfg, val_set, epochs, on_epoch, keep_best, patience,
                                         val_by_team)
    seconds = time.perf_counter() - started
    return _result(ending, evaluated, seconds, keep_best)


@dataclass(frozen=True)
class BestEpoch:
    """The epoch with the lowest validation error so far."""

    mean_px: float = math.inf
    epoch: int = 0  # 0: no epoch validated yet
    metrics: Metrics | None = None
    state: dict[str, torch.Tensor] | None = None  # a copy of the evaluated weights, kept only with keep_best


@dataclass
class _Ending:
    """How the epoch loop ended: the status, the last epoch trained and what was measured on the way."""

    status: str = "ok"
    reason: str = ""
    epoch: int = 0
    metrics: Metrics | None = None  # of the last epoch evaluated
    history: list[float] = field(default_factory=list)
    best: BestEpoch = field(default_factory=BestEpoch)

    def diverged(self, reason: str) -> _Ending:
        self.status, self.reason = "diverged", reason
        return self


def _check_arguments(train_set: ConeSet, val_set: ConeSet | None, epochs: int, ema: float | None, keep_best: bool,
                     patience: int | None) -> None:
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if ema is not None and not 0 < ema < 1:
        raise ValueError(f"ema must be a decay in (0, 1), got {ema}")
    validate = val_set is not None
    if len(train_set) == 0 or (validate and len(val_set) == 0):
        raise ValueError(f"need training and validation samples, got {len(train_set)} and "
                         f"{len(val_set) if validate else 'no validation set'}")
    if not validate and (keep_best or patience):
        raise ValueError("keep_best and patience need a validation set")


def _prepare(cfg: Config, train_set: ConeSet, epochs: int, generator: torch.Generator, *,
             augmentation: AugmentConfig, schedule: str, ema: float | None, shape: ShapeLoss | None,
             balance_teams: bool, teacher: nn.Module | None,
             distill: float) -> tuple[nn.Module, Callable[[], float | None]]:
    """Build the model, its optimiser and learning-rate schedule (in this order: the model's initial weights
    come from the global seed). Returns the model to evaluate (the weight average with ``ema``) and one epoch
    of training, which returns the loss value if it stopped being finite."""
    fmt = memory_format(cfg)
    model = create_model(cfg).to(memory_format=fmt)
    average = WeightAverage(model, ema) if ema is not None else None
    team_weights = balanced_weights(train_set.teams) if balance_teams else None
    optimizer = make_optimizer(cfg, model)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    scheduler = lr_schedule(optimizer, schedule, epochs * steps_per_epoch)
    run_epoch = functools.partial(
        train_epoch, model, cfg, optimizer, scheduler, train_set, augmentation, generator, fmt,
        after_step=average.update if average is not None else None, shape=shape, team_weights=team_weights,
        teacher=(teacher, distill) if teacher is not None else None,
    )
    return (average.model if average is not None else model), run_epoch


def _trained_epochs(run_epoch: Callable[[], float | None], epochs: int, ending: _Ending) -> Iterator[int]:
    """Train epoch after epoch, yielding each one's number once trained; a loss that stops being finite marks
    ``ending`` diverged and ends the run."""
    for epoch in range(1, epochs + 1):
        ending.epoch = epoch
        bad_loss = run_epoch()
        if bad_loss is not None:
            ending.diverged(f"loss became {bad_loss} in epoch {epoch}")
            return
        yield epoch


def _epochs_with_validation(run_epoch: Callable[[], float | None], evaluated: nn.Module, cfg: Config,
                            val_set: ConeSet, epochs: int, on_epoch: EpochCallback | None, keep_best: bool,
                            patience: int | None, by_team: bool = False) -> _Ending:
    """Train and validate epoch by epoch until ``epochs``, divergence, ``on_epoch`` asks to stop, or ``patience``."""
    ending = _Ending()
    for epoch in _trained_epochs(run_epoch, epochs, ending):
        metrics = evaluate(evaluated, cfg, val_set, by_team=by_team)
        if not math.isfinite(metrics.mean_px):
            return ending.diverged(f"validation output not finite after epoch {epoch}")
        ending.metrics = metrics
        ending.history.append(metrics.mean_px)
        if metrics.mean_px < ending.best.mean_px:
            state = copy.deepcopy(evaluated.state_dict()) if keep_best else None
            ending.best = BestEpoch(metrics.mean_px, epoch, metrics, state)
        if on_epoch is not None and on_epoch(epoch, metrics):
            ending.status = "stopped"
            break
        if patience is not None and epoch - ending.best.epoch >= patience:
            break
    return ending


def _epochs_without_validation(run_epoch: Callable[[], float | None], evaluated: nn.Module, cfg: Config,
                               train_set: ConeSet, epochs: int, on_epoch: EpochCallback | None) -> _Ending:
    """Ship mode: train every epoch (unless it diverges or ``on_epoch`` asks to stop), then score the fit."""
    ending = _Ending()
    for epoch in _trained_epochs(run_epoch, epochs, ending):
        if on_epoch is not None and on_epoch(epoch, None):
            ending.status = "stopped"
            break
    if ending.status == "diverged":
        return ending
    ending.metrics = evaluate(evaluated, cfg, train_set)
    if not math.isfinite(ending.metrics.mean_px):
        return ending.diverged(f"output not finite after epoch {ending.epoch}")
    return ending


def _result(ending: _Ending, evaluated: nn.Module, seconds: float, keep_best: bool) -> TrainResult:
    """The run's result; with ``keep_best`` the best epoch's weights are loaded into ``evaluated`` first."""
    best = ending.best
    if ending.status == "diverged":
        return TrainResult("diverged", Metrics.failed(), ending.epoch, seconds, ending.history, ending.reason,
                           evaluated, best.epoch)
    if keep_best and best.state is not None:
        evaluated.load_state_dict(best.state)
        return TrainResult(ending.status, best.metrics, ending.epoch, seconds, ending.history, "", evaluated,
                           best.epoch)
    return TrainResult(ending.status, ending.metrics, ending.epoch, seconds, ending.history, "", evaluated,
                       ending.epoch)


def balanced_weights(teams: tuple[str, ...]) -> torch.Tensor:
    """(N,) sampling weights that give every team the same total weight."""
    counts: dict[str, int] = {}
    for team in teams:
        counts[team] = counts.get(team, 0) + 1
    return torch.tensor([1.0 / counts[team] for team in teams], dtype=torch.float64)


class WeightAverage:
    """An exponential moving average of a model's weights, updated after every optimiser step.

    Batch-norm statistics are copied, not averaged: they already are running averages.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.source, self.decay = model, decay
        self.model = copy.deepcopy(model)
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self) -> None:
        for average, current in zip(self.model.parameters(), self.source.parameters()):
            average.lerp_(current, 1 - self.decay)
        for average, current in zip(self.model.buffers(), self.source.buffers()):
            average.copy_(current)


def train_epoch(model: nn.Module, cfg: Config, optimizer: torch.optim.Optimizer, scheduler, data: ConeSet,
                augmentation: AugmentConfig, generator: torch.Generator,
                fmt: torch.memory_format = torch.channels_last,
                after_step: Callable[[], None] | None = None, shape: ShapeLoss | None = None,
                team_weights: torch.Tensor | None = None,
                teacher: tuple[nn.Module, float] | None = None) -> float | None:
    """One pass over ``data`` in shuffled batches; returns the loss value if it stopped being finite.

    team_weights: (N,) sampling weights; the epoch then draws N crops with replacement by them.
    """
    model.train()
    if teacher is not None:
        teacher[0].eval()
    height, width = data.images.shape[-2:]
    order = (torch.randperm(len(data), generator=generator) if team_weights is None
             else torch.multinomial(team_weights, len(data), replacement=True, generator=generator))
    for start in range(0, len(order), cfg.batch_size):
        index = order[start:start + cfg.batch_size]
        if len(index) < 2 and cfg.batch_norm:
            continue  # batch norm cannot train on a single sample
        images = data.images[index].float().div_(255)
        images, keypoints = augment(images, data.keypoints[index], augmentation, generator)
        images = images.contiguous(memory_format=fmt)
        loss = heatmap_loss(model, cfg, images, keypoints, height, width, shape, teacher)
        if not torch.isfinite(loss):
            return loss.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if after_step is not None:
            after_step()
    return None


def heatmap_loss(model: nn.Module, cfg: Config, images: torch.Tensor, keypoints: torch.Tensor,
                 height: int, width: int, shape: ShapeLoss | None = None,
                 teacher: tuple[nn.Module, float] | None = None) -> torch.Tensor:
    """The training loss of one batch: MSE on heatmaps (the original), or spatial cross-entropy; plus the
    optional ``shape`` terms on the soft-argmax of the logits and the distillation term (teacher, weight)."""
    targets = gaussian_targets(keypoints, height, width, cfg.sigma)  # (N, 7, H, W), peak 1
    logits = model.logits(images)  # (N, 7, H, W); model(images) is model.head.finish(logits)
    if cfg.loss == "ce":
        target = normalised(targets).flatten(2)
        loss = -(target * F.log_softmax(logits.flatten(2), dim=-1)).sum(-1).mean()
    else:
        if cfg.head == "softmax":
            targets = normalised(targets)
        loss = F.mse_loss(model.head.finish(logits), targets)
    if shape:
        loss = loss + shape(soft_argmax(logits), keypoints)
    if teacher is not None:
        with torch.no_grad():
            target = torch.softmax(teacher[0].logits(images).flatten(2), dim=-1)
        student = F.log_softmax(logits.flatten(2), dim=-1)
        loss = loss + teacher[1] * (target * (target.clamp_min(1e-12).log() - student)).sum(-1).mean()
    return loss


def soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) logits -> (N, K, 2) expected (x, y) under the spatial softmax."""
    n, k, h, w = logits.shape
    p = torch.softmax(logits.flatten(2), dim=-1).reshape(n, k, h, w)
    xs = torch.arange(w, dtype=p.dtype, device=p.device)
    ys = torch.arange(h, dtype=p.dtype, device=p.device)
    return torch.stack([(p.sum(2) * xs).sum(-1), (p.sum(3) * ys).sum(-1)], dim=-1)


# The two flanks, base to top, in canonical keypoint order: a cone's flank is a straight line in the image.
FLANKS = ((0, 1, 2, 3), (6, 5, 4, 3))


@dataclass(frozen=True)
class ShapeLoss:
    """Terms on the expected keypoints (the soft-argmax), in px, added to the heatmap loss.

    coordinate: weight of the L1 distance between expected and true keypoints. The expectation moves when the
        map has a second peak, so this punishes the multi-modal maps that decode to gross errors.
    line: weight of the absolute difference between each flank middle point's signed distance from the line
        through its base and the top and the same distance in the labels (the labels' own bends are not
        punished).
    """

    coordinate: float = 0.0
    line: float = 0.0

    def __bool__(self) -> bool:
        return self.coordinate > 0 or self.line > 0

    def __call__(self, expected: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        loss = expected.new_zeros(())
        if self.coordinate > 0:
            loss = loss + self.coordinate * (expected - truth).abs().sum(-1).mean()
        if self.line > 0:
            loss = loss + self.line * (_flank_bend(expected) - _flank_bend(truth)).abs().mean()
        return loss


def _flank_bend(points: torch.Tensor) -> torch.Tensor:
    """(N, 7, 2) -> (N, 4): signed distance (px) of each flank's two middle points from its base-top line."""
    bends = []
    for base, middle, upper, top in FLANKS:
        direction = points[:, top] - points[:, base]  # (N, 2)
        length = direction.norm(dim=-1).clamp(min=1.0)
        for i in (middle, upper):
            offset = points[:, i] - points[:, base]
            bends.append((direction[:, 0] * offset[:, 1] - direction[:, 1] * offset[:, 0]) / length)
    return torch.stack(bends, dim=-1)


@torch.no_grad()
def predict_heatmaps(model: nn.Module, images: torch.Tensor,
                     fmt: torch.memory_format = torch.channels_last, flip: bool = False) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> heatmaps (N, 7, H, W), in batches, eval mode.

    flip: average with the heatmaps of the mirrored crops, mirrored back (test-time flip averaging).
    """
    model.eval()
    out = []
    for start in range(0, len(images), EVAL_BATCH):
        batch = images[start:start + EVAL_BATCH].float().div_(255).contiguous(memory_format=fmt)
        heatmaps = model(batch)
        if flip:
            mirrored = model(batch.flip(-1).contiguous(memory_format=fmt))
            heatmaps = 0.5 * (heatmaps + flip_back(mirrored, FLIP_PERMUTATION))
        out.append(heatmaps)
    return torch.cat(out)


def predict_keypoints(model: nn.Module, images: torch.Tensor, fmt: torch.memory_format = torch.channels_last, *,
                      flip_test: bool = False, decoder: str = "parabola") -> torch.Tensor:
    """uint8 (N, 3, H, W) -> keypoints (N, 7, 2), read out as the deployed graph does (flip, decoder)."""
    return DECODERS[decoder](predict_heatmaps(model, images, fmt, flip=flip_test))


@torch.no_grad()
def evaluate(model: nn.Module, cfg: Config, data: ConeSet, *, flip_test: bool = False,
             decoder: str = "parabola", by_team: bool = False) -> Metrics:
    """Keypoint metrics of ``model`` on ``data``; ``flip_test`` and ``decoder`` as deployed (see
    ``predict_heatmaps`` and ``objectives.heatmaps.DECODERS``); ``by_team``: ``mean_px`` is the mean of each
    team's error."""
    heatmaps = predict_heatmaps(model, data.images, memory_format(cfg), flip=flip_test)
    height, width = heatmaps.shape[-2:]
    targets = gaussian_targets(data.keypoints, height, width, cfg.sigma)
    if cfg.head == "softmax":
        targets = normalised(targets)
    mse = F.mse_loss(heatmaps, targets).item()
    if not math.isfinite(mse):
        return Metrics.failed(data.keypoints.shape[1])
    return keypoint_metrics(DECODERS[decoder](heatmaps), data.keypoints, mse, data.teams if by_team else None)


def make_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)


def lr_schedule(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int):
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if schedule == "cosine":
        floor = 0.01
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step / total_steps, 1.0)))
        )
    raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
