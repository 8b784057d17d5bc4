"""Training for int8 deployment: post-training quantization and quantization-aware fine-tuning. Imports neither
Optuna nor Ray: retrain calls ``quantize``, the search's int8 trials ``post_training``.

    qmodel = post_training(model, cfg, train_set)                      # folded, fake-quantized, calibrated
    result = quantize(model, cfg, train_set, val_set, epochs=3)        # the same, then fine-tuned (QAT)
    export_onnx(result.model, cfg, "model.onnx", weights="int8")

The fake-quantized model (``search_space.int8.QuantConv2d`` in place of every folded convolution) computes what
the int8 ONNX file computes. Batch norm is folded before quantization and not simulated during fine-tuning: the
fine-tune is short and at a tenth of the learning rate, so the folded convolutions simply train on.
Calibration sets each convolution's input range to the minimum and maximum it sees on ``CALIBRATION_CROPS``
training crops (unaugmented); fine-tuning moves the ranges with a moving average of each batch's
(``search_space.int8.EMA``) and reuses the float training's epoch, loss and optimizer (``objectives.train``).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from cones.augment import AugmentConfig
from cones.types import ConeSet
from objectives.metrics import Metrics
from objectives.train import EVAL_BATCH, evaluate, make_optimizer, train_epoch
from search_space.config import Config
from search_space.int8 import fake_quantize, quantized_convs, set_observing
from search_space.registry import memory_format
from search_space.size import fold_batch_norm

CALIBRATION_CROPS = 512
LR_FACTOR = 0.1  # the fine-tune's learning rate, as a fraction of the config's


@dataclass
class QuantizeResult:
    status: str  # "ok" or "diverged" (the fine-tune's loss stopped being finite; the model is then the calibrated one)
    model: nn.Module  # fake-quantized, eval mode: what export_onnx(..., weights="int8") writes
    metrics: Metrics  # of the returned model, on the validation set (the training crops without one)
    post_training: Metrics  # of the calibrated model before fine-tuning, on the same crops
    epochs: int  # fine-tuning epochs run
    best_epoch: int  # the fine-tuning epoch whose weights were kept (0: the calibrated model)
    seconds: float
    history: list[float] = field(default_factory=list)  # mean px after each fine-tuning epoch
    reason: str = ""


def prepare(model: nn.Module) -> nn.Module:
    """A fake-quantized copy of a trained ``create_model(cfg)``: batch norm folded, every convolution a
    ``QuantConv2d``, in eval mode; calibrate it before use."""
    return fake_quantize(fold_batch_norm(copy.deepcopy(model).cpu())).eval()


@torch.no_grad()
def calibrate(qmodel: nn.Module, images: torch.Tensor, fmt: torch.memory_format = torch.contiguous_format) -> nn.Module:
    """Set every convolution's input range to the extremes it sees on ``images`` (uint8 (N, 3, H, W))."""
    for conv in quantized_convs(qmodel).values():
        conv.input_range.copy_(torch.tensor([math.inf, -math.inf]))
    qmodel.eval()
    set_observing(qmodel, True)
    try:
        for start in range(0, len(images), EVAL_BATCH):
            qmodel(images[start:start + EVAL_BATCH].float().div_(255).contiguous(memory_format=fmt))
    finally:
        set_observing(qmodel, False)
    return qmodel


def calibration_images(data: ConeSet, crops: int = CALIBRATION_CROPS, seed: int = 0) -> torch.Tensor:
    """A seeded sample of ``crops`` of ``data``'s images (all of them when it holds fewer)."""
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:crops]
    return data.images[order]


def post_training(model: nn.Module, cfg: Config, calibration: ConeSet, crops: int = CALIBRATION_CROPS,
                  seed: int = 0) -> nn.Module:
    """``model`` quantized after training: folded, fake-quantized and calibrated on ``calibration``'s crops."""
    return calibrate(prepare(model), calibration_images(calibration, crops, seed), memory_format(cfg))


def quantize(model: nn.Module, cfg: Config, train_set: ConeSet, val_set: ConeSet | None, epochs: int, *,
             seed: int = 0, augmentation: AugmentConfig | None = None, lr_factor: float = LR_FACTOR,
             crops: int = CALIBRATION_CROPS) -> QuantizeResult:
    """Post-training quantization of a trained ``model``, then ``epochs`` of quantization-aware fine-tuning on
    ``train_set`` (0: calibration only). With ``val_set`` the epoch with the lowest validation error is kept,
    the calibrated model (epoch 0) included; without, the last."""
    if epochs < 0:
        raise ValueError(f"quantization-aware epochs must be >= 0, got {epochs}")
    started = time.perf_counter()
    fmt = memory_format(cfg)
    scored = val_set if val_set is not None else train_set
    qmodel = post_training(model, cfg, train_set, crops, seed).to(memory_format=fmt)
    before = evaluate(qmodel, cfg, scored)
    best = (before.mean_px, 0, before, copy.deepcopy(qmodel.state_dict()))
    optimizer = make_optimizer(cfg.replace(lr=cfg.lr * lr_factor), qmodel)
    steps = epochs * math.ceil(len(train_set) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    generator = torch.Generator().manual_seed(seed)
    augmentation = AugmentConfig() if augmentation is None else augmentation
    history, status, reason, epoch, metrics = [], "ok", "", 0, before
    for epoch in range(1, epochs + 1):
        bad_loss = train_epoch(qmodel, cfg, optimizer, scheduler, train_set, augmentation, generator, fmt)
        metrics = evaluate(qmodel, cfg, scored)
        if bad_loss is not None or not math.isfinite(metrics.mean_px):
            status, reason = "diverged", f"quantization-aware loss became {bad_loss} in epoch {epoch}"
            break
        history.append(metrics.mean_px)
        if val_set is None or metrics.mean_px < best[0]:
            best = (metrics.mean_px, epoch, metrics, copy.deepcopy(qmodel.state_dict()))
    if status == "diverged" or val_set is not None:
        qmodel.load_state_dict(best[3])
        metrics = best[2]
    return QuantizeResult(status, qmodel.eval(), metrics, before, epoch, best[1], time.perf_counter() - started,
                          history, reason)
