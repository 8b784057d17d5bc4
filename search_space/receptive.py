"""The receptive field of a config: the input pixels that can move one pixel of a keypoint's heatmap.

Cones of a new camera may be framed larger than the training teams' (``../shared/cones_more``: the keypoints span
up to 28 x 55 px of the 48 x 64 crop), and a heatmap pixel sees only its receptive field: whether that context
matters is a question each study answers (``analysis/questions.py``), so every trial records it.

Measured on the built model, not derived per family, so a new family needs nothing here: the model is built with
every convolution's weights positive and equal and no randomness (the global RNG is untouched, so a seeded search
trains as before), and the gradient of the centre logit of a canvas larger than any receptive field marks the
input pixels that reach it. The width changes how many channels a layer has, not which pixels reach which, so
the model is built one channel wide (a test checks this on every family) and measured in milliseconds. Max pooling counts its whole window (averaged instead of maxed while measuring), the
receptive field of the architecture rather than of one input's argmax path.
"""
from __future__ import annotations

import contextlib
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from search_space.config import ARCH_FIELDS, Config
from search_space.registry import create_model

CANVAS = (192, 144)  # (height, width): three times the crop, divisible by 2 ** 4


def receptive_field(cfg: Config) -> tuple[int, int]:
    """(height, width) in input pixels of what can move the centre of a heatmap; ``CANVAS`` means at least that."""
    return _receptive_field(cfg.replace(width=1).arch)


@lru_cache(maxsize=1024)
def _receptive_field(arch: tuple) -> tuple[int, int]:
    cfg = Config(**dict(zip(ARCH_FIELDS, arch)))
    with torch.device("meta"):
        model = create_model(cfg)
    model = model.to_empty(device="cpu").eval()
    _positive_weights(model)
    canvas = torch.ones(1, 3, *CANVAS, requires_grad=True)
    with _pool_whole_windows():
        logits = model.logits(canvas)  # (1, 7, H, W)
    height, width = logits.shape[-2:]
    logits[0, :, height // 2, width // 2].sum().backward()
    rows, cols = torch.nonzero(canvas.grad[0].abs().sum(0), as_tuple=True)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@torch.no_grad()
def _positive_weights(model: nn.Module) -> None:
    """Every activation stays positive, so no ReLU cuts a path; each layer keeps the scale of its input."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.fill_(1.0 / module.weight[0].numel())
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_parameters()  # weight 1, bias 0, running mean 0, variance 1: no randomness
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if not torch.isfinite(tensor).all():  # a layer this module does not know: left as to_empty made it
            raise ValueError(f"receptive_field: cannot set {name} of {type(model).__name__}; "
                             "teach search_space/receptive.py its layer type")


@contextlib.contextmanager
def _pool_whole_windows():
    max_pool = F.max_pool2d

    def average(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        if dilation != 1 or return_indices:
            raise ValueError("receptive_field: dilated max pooling or pooling indices are not supported")
        return F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode=ceil_mode, count_include_pad=False)

    F.max_pool2d = average
    try:
        yield
    finally:
        F.max_pool2d = max_pool
