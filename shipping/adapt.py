"""Adapt a shipped model to a new camera with a few dozen labelled crops of it. No Optuna, no Ray.

Much of a new team's error is a systematic shift of some keypoints (its camera's, crop generator's or
annotators' convention), which a short fine-tune on its own crops can learn. The fine-tune trains on every
labelled crop for a fixed, short schedule (Adam, the learning rate decaying to zero), because with 10-30 crops
holding some out to choose the step cost more than the choice was worth (docs/decisions.md, "Adapting").
Two things keep it from forgetting what the shipped model knew: batch-norm statistics stay frozen (a handful
of crops cannot estimate them), and either crops of the shared data are mixed into every step (``shared``) or
the weights are pulled back towards the shipped ones (``penalty``, L2-SP). Crops are not mirrored: a team's
convention is often lopsided, and a mirrored crop would teach it backwards.

Whether the fine-tune helps is checked before it is kept: the same schedule runs once per fold of a
frame-grouped cross-validation (each fold's crops held out in turn); if the held-out crops got worse, both
on average and for most of them, the shipped weights are kept.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from cones.augment import AugmentConfig, augment
from cones.types import ConeSet
from objectives.metrics import Metrics, keypoint_metrics
from objectives.train import evaluate, heatmap_loss, predict_keypoints
from search_space.config import Config
from search_space.registry import memory_format

MIN_CROPS = 5


@dataclass(frozen=True)
class AdaptSettings:
    steps: int = 160  # optimiser steps on all the labelled crops
    lr_scale: float = 1.0  # peak fine-tune learning rate = the config's lr times this (Adam, cosine to 0)
    batch: int = 16  # new crops per step (drawn with replacement when there are fewer)
    shared_batch: int = 16  # shared crops mixed into each step when a shared set is given
    penalty: float = 0.0  # L2-SP: weight of the squared drift from the shipped weights (per parameter mean)
    folds: int = 3  # frame-grouped cross-validation folds that check the fine-tune helps
    mirror: bool = False  # mirror crops as the recipe's augmentation does (off: conventions are lopsided)
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.folds < 2:
            raise ValueError(f"steps and batch must be >= 1 and folds >= 2, got {self}")
        if not self.lr_scale > 0 or self.penalty < 0 or self.shared_batch < 0:
            raise ValueError(f"lr_scale must be > 0, penalty and shared_batch >= 0, got {self}")


@dataclass
class AdaptResult:
    model: nn.Module  # the adapted model, or the shipped one when adapting did not help
    before: Metrics  # the shipped model on the labelled crops
    after: Metrics  # the returned model's: ``tried`` if adapted, else ``before``
    tried: Metrics  # cross-validated: each fold's crops under the fine-tune that did not see them
    kept_shipped: bool  # the fine-tune raised the held-out crops' mean error and that of most of them
    folds: list[tuple[int, float, float]]  # (held-out crops, mean px before, after) per fold


def fine_tune(model: nn.Module, cfg: Config, labelled: ConeSet, *, shared: ConeSet | None = None,
              settings: AdaptSettings = AdaptSettings(), seed: int = 0, flip_test: bool = False,
              decoder: str = "parabola", threads: int | None = None) -> AdaptResult:
    """Fine-tune a copy of ``model`` on every crop of ``labelled``, if cross-validation says it helps."""
    if threads:
        torch.set_num_threads(threads)
    shipped = copy.deepcopy(model).to(memory_format=memory_format(cfg)).eval()
    inference = {"flip_test": flip_test, "decoder": decoder}
    before, after, per_fold = [], [], []
    for train_part, held in frame_folds(labelled, settings.folds, seed):
        tuned = _train(shipped, cfg, train_part, shared, settings, seed)
        before.append(_scored(shipped, cfg, held, inference))
        after.append(_scored(tuned, cfg, held, inference))
        per_fold.append((len(held), before[-1][2].mean_px, after[-1][2].mean_px))
    before_all, after_all = _pooled(before), _pooled(after)
    if not (after_all.mean_px < before_all.mean_px or _most_crops_better(before, after)):
        return AdaptResult(shipped, before_all, before_all, after_all, True, per_fold)
    return AdaptResult(_train(shipped, cfg, labelled, shared, settings, seed), before_all, after_all, after_all,
                       False, per_fold)


def frame_folds(data: ConeSet, folds: int, seed: int) -> list[tuple[ConeSet, ConeSet]]:
    """(train, held out) per fold; whole frames, dealt round-robin in an order fixed by ``seed``, at most one
    fold per frame."""
    frames = sorted(set(data.frames))
    if len(frames) < 2:
        raise ValueError(f"the labelled crops come from {len(frames)} frame; checking that adapting helps needs "
                         "crops from 2 or more frames (camera images)")
    order = np.random.default_rng(seed).permutation(frames)
    parts = [set(order[i::folds]) for i in range(min(folds, len(frames)))]
    return [(data.subset([i for i, f in enumerate(data.frames) if f not in part]),
             data.subset([i for i, f in enumerate(data.frames) if f in part])) for part in parts]


def _train(shipped: nn.Module, cfg: Config, new: ConeSet, shared: ConeSet | None, settings: AdaptSettings,
           seed: int) -> nn.Module:
    """A copy of ``shipped`` after ``settings.steps`` fine-tuning steps on ``new`` (and ``shared``)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    fmt = memory_format(cfg)
    tuned = copy.deepcopy(shipped)
    anchor = [p.detach().clone() for p in shipped.parameters()]
    optimizer = torch.optim.Adam(tuned.parameters(), lr=cfg.lr * settings.lr_scale)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / settings.steps)))
    augmentation = settings.augmentation if settings.mirror else replace(settings.augmentation, flip_prob=0.0)
    height, width = new.images.shape[-2:]
    for _ in range(settings.steps):
        _train_mode_with_frozen_statistics(tuned)
        index = torch.randint(len(new), (settings.batch,), generator=generator)
        images, keypoints = new.images[index], new.keypoints[index]
        if shared is not None and settings.shared_batch:
            other = torch.randint(len(shared), (settings.shared_batch,), generator=generator)
            images = torch.cat([images, shared.images[other]])
            keypoints = torch.cat([keypoints, shared.keypoints[other]])
        images, keypoints = augment(images.float().div_(255), keypoints, augmentation, generator)
        loss = heatmap_loss(tuned, cfg, images.contiguous(memory_format=fmt), keypoints, height, width)
        if settings.penalty:
            loss = loss + settings.penalty * sum(((p - a) ** 2).mean() for p, a in zip(tuned.parameters(), anchor))
        if not torch.isfinite(loss):
            return copy.deepcopy(shipped)  # a diverging fine-tune adapts nothing; cross-validation sees no gain
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return tuned.eval()


def _scored(model: nn.Module, cfg: Config, held: ConeSet, inference: dict) -> tuple[torch.Tensor, torch.Tensor,
                                                                                     Metrics]:
    """(predicted, true keypoints, metrics) of ``model`` on ``held``."""
    predicted = predict_keypoints(model, held.images, memory_format(cfg), **inference)
    return predicted, held.keypoints, evaluate(model, cfg, held, **inference)


def _most_crops_better(before: list, after: list) -> bool:
    """Did the fine-tune lower the error of most held-out crops? The median per-crop change rather than the
    pooled mean, because with 10-30 crops one odd crop (a fallen cone, a cut-off one) can swing the mean."""
    change = torch.cat([pixel_errors(a[0], a[1]).mean(dim=1) - pixel_errors(b[0], b[1]).mean(dim=1)
                        for b, a in zip(before, after)])  # (crops,) px, negative = better
    return bool(change.median() < 0)


def _pooled(scored: list[tuple[torch.Tensor, torch.Tensor, Metrics]]) -> Metrics:
    """Metrics over every fold's held-out crops at once (the heatmap MSE weighted by crops)."""
    mse = sum(m.heatmap_mse * len(t) for _, t, m in scored) / sum(len(t) for _, t, _ in scored)
    return keypoint_metrics(torch.cat([p for p, _, _ in scored]), torch.cat([t for _, t, _ in scored]), mse)


def _train_mode_with_frozen_statistics(model: nn.Module) -> None:
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()  # running statistics stay the shipped model's; the affine weights still train


def mean_offset(model: nn.Module, cfg: Config, labelled: ConeSet, *, flip_test: bool = False,
                decoder: str = "parabola") -> torch.Tensor:
    """The crude adaptation: each keypoint's mean error (predicted - true) on the labelled crops, (7, 2) px.
    Subtracting it from every prediction removes a team's systematic shift and nothing else."""
    predicted = predict_keypoints(model, labelled.images, memory_format(cfg), flip_test=flip_test, decoder=decoder)
    return (predicted - labelled.keypoints).mean(dim=0)


def cross_validated_offset(model: nn.Module, cfg: Config, labelled: ConeSet, *, folds: int, seed: int,
                           flip_test: bool = False, decoder: str = "parabola") -> dict:
    """The crude fix judged like the fine-tune: each fold's offset measured on the other folds' crops and
    subtracted on its own; mean px and PCK@2 over every fold's crops."""
    inference = {"flip_test": flip_test, "decoder": decoder}
    errors = [keypoint_errors(model, cfg, held, offset=mean_offset(model, cfg, train_part, **inference), **inference)
              for train_part, held in frame_folds(labelled, folds, seed)]
    return summarise_errors(torch.cat(errors))


def keypoint_errors(model: nn.Module, cfg: Config, data: ConeSet, *, offset: torch.Tensor | None = None,
                    flip_test: bool = False, decoder: str = "parabola") -> torch.Tensor:
    """(N, 7) px errors of ``model`` on ``data``, after subtracting ``offset`` (7, 2) if given."""
    predicted = predict_keypoints(model, data.images, memory_format(cfg), flip_test=flip_test, decoder=decoder)
    return pixel_errors(predicted if offset is None else predicted - offset, data.keypoints)


def pixel_errors(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(N, 7, 2) predicted and true keypoints -> (N, 7) distances in px."""
    return torch.linalg.vector_norm(predicted.double() - truth.double(), dim=-1)


def summarise_errors(error: torch.Tensor) -> dict:
    flat = error.flatten()
    if not torch.isfinite(flat).all():
        return {"mean_px": math.inf, "pck2": 0.0}
    return {"mean_px": flat.mean().item(), "pck2": (flat <= 2).double().mean().item()}
