"""Adapt a shipped model to a new camera with a few dozen labelled crops of it. No Optuna, no Ray.

Much of a new team's error is a systematic shift of some keypoints (its camera's, crop generator's or
annotators' convention), which a short fine-tune on its own crops can learn. Two things keep the fine-tune
from forgetting what the shipped model knew: batch-norm statistics stay frozen (a handful of crops cannot
estimate them), and either crops of the shared data are mixed into every step (``shared``) or the weights
are pulled back towards the shipped ones (``penalty``, L2-SP). Early stopping on a frame-grouped part of the
new crops chooses the step; if no step beats the shipped model there, the shipped weights are kept.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from cones.augment import AugmentConfig, augment
from cones.types import ConeSet
from objectives.metrics import Metrics
from objectives.train import evaluate, heatmap_loss, predict_keypoints
from search_space.config import Config
from search_space.registry import memory_format

MIN_CROPS = 5


@dataclass(frozen=True)
class AdaptSettings:
    steps: int = 300  # optimiser steps at most
    lr_scale: float = 1.0  # fine-tune learning rate = the config's lr times this (Adam, constant)
    batch: int = 16  # new crops per step (drawn with replacement when there are fewer)
    shared_batch: int = 16  # shared crops mixed into each step when a shared set is given
    penalty: float = 0.0  # L2-SP: weight of the squared drift from the shipped weights (per parameter mean)
    eval_every: int = 20  # steps between evaluations on the held-out new crops
    patience: int = 5  # evaluations without improvement before stopping
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.eval_every < 1 or self.patience < 1:
            raise ValueError(f"steps, batch, eval_every and patience must be >= 1, got {self}")
        if not self.lr_scale > 0 or self.penalty < 0 or self.shared_batch < 0:
            raise ValueError(f"lr_scale must be > 0, penalty and shared_batch >= 0, got {self}")


@dataclass
class AdaptResult:
    model: nn.Module  # the adapted model, or the shipped one when adapting did not help
    before: Metrics  # the shipped model on the held-out new crops
    after: Metrics  # the returned model on them
    kept_shipped: bool  # no step beat the shipped model on the held-out new crops
    best_step: int
    steps: int  # steps trained
    history: list[tuple[int, float]]  # (step, held-out mean px)


def fine_tune(model: nn.Module, cfg: Config, new_train: ConeSet, new_holdout: ConeSet, *,
              shared: ConeSet | None = None, settings: AdaptSettings = AdaptSettings(), seed: int = 0,
              flip_test: bool = False, decoder: str = "parabola", threads: int | None = None) -> AdaptResult:
    """Fine-tune a copy of ``model`` on ``new_train``, choosing the step on ``new_holdout``."""
    if len(new_train) < 1 or len(new_holdout) < 1:
        raise ValueError(f"need new crops to train on and to hold out, got {len(new_train)} and {len(new_holdout)}")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    fmt = memory_format(cfg)
    shipped = copy.deepcopy(model).to(memory_format=fmt).eval()
    tuned = copy.deepcopy(shipped)
    anchor = [p.detach().clone() for p in shipped.parameters()]
    optimizer = torch.optim.Adam(tuned.parameters(), lr=cfg.lr * settings.lr_scale)
    height, width = new_train.images.shape[-2:]

    def score(net: nn.Module) -> Metrics:
        return evaluate(net, cfg, new_holdout, flip_test=flip_test, decoder=decoder)

    before = score(shipped)
    best = (before.mean_px, 0, copy.deepcopy(tuned.state_dict()), before)
    history, bad, step = [(0, before.mean_px)], 0, 0
    for step in range(1, settings.steps + 1):
        _train_mode_with_frozen_statistics(tuned)
        index = torch.randint(len(new_train), (settings.batch,), generator=generator)
        images, keypoints = new_train.images[index], new_train.keypoints[index]
        if shared is not None and settings.shared_batch:
            other = torch.randint(len(shared), (settings.shared_batch,), generator=generator)
            images = torch.cat([images, shared.images[other]])
            keypoints = torch.cat([keypoints, shared.keypoints[other]])
        images, keypoints = augment(images.float().div_(255), keypoints, settings.augmentation, generator)
        loss = heatmap_loss(tuned, cfg, images.contiguous(memory_format=fmt), keypoints, height, width)
        if settings.penalty:
            drift = sum(((p - a) ** 2).mean() for p, a in zip(tuned.parameters(), anchor))
            loss = loss + settings.penalty * drift
        if not torch.isfinite(loss):
            break  # keep the best so far; the shipped weights at worst
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % settings.eval_every and step != settings.steps:
            continue
        metrics = score(tuned)
        history.append((step, metrics.mean_px))
        if metrics.mean_px < best[0]:
            best, bad = (metrics.mean_px, step, copy.deepcopy(tuned.state_dict()), metrics), 0
        else:
            bad += 1
            if bad >= settings.patience:
                break
    kept = best[1] == 0
    if kept:
        return AdaptResult(shipped, before, before, True, 0, step, history)
    tuned.load_state_dict(best[2])
    return AdaptResult(tuned.eval(), before, best[3], False, best[1], step, history)


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
