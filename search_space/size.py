"""Exact deployed size of a candidate, from the built model, without allocating weights.

A deployed model has batch norm folded into the preceding convolution (``fold_batch_norm``), so it stores
each convolution's weight plus one bias per output channel when the convolution had a bias or a batch
norm, and nothing of the batch norm itself. ``weight_bytes`` counts exactly that, in float32 (the default) or
in the int8 format of ``search_space.int8`` (int8 weights with their per-channel scales and zero points, float32
biases, each convolution's input scale and zero point).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from search_space.config import ARCH_FIELDS, BYTES_PER_KB, WEIGHT_FORMATS, Config
from search_space.families.layers import ConvBN
from search_space.int8 import FLOAT32_BYTES, conv_bytes
from search_space.registry import create_model

INPUT_SIZE = (48, 64)  # (width, height)


@dataclass(frozen=True)
class ModelSize:
    weight_bytes: int  # bytes of the folded model's tensors in the weight format measured (float32 by default)
    params: int  # deployed (folded) parameter count
    macs: int  # multiply-accumulates for one input crop

    @property
    def kb(self) -> float:
        return self.weight_bytes / BYTES_PER_KB


def measure(cfg: Config, input_size: tuple[int, int] = INPUT_SIZE, weights: str = "float32") -> ModelSize:
    """Size of ``cfg`` as deployed with ``weights`` ("float32" or "int8"); cached on the architecture fields,
    a few ms the first time."""
    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_FORMATS)}, got {weights!r}")
    return _measure(cfg.arch, input_size, weights)


def weight_bytes(cfg: Config, weights: str = "float32") -> int:
    return measure(cfg, weights=weights).weight_bytes


@lru_cache(maxsize=4096)
def _measure(arch: tuple, input_size: tuple[int, int], weights: str) -> ModelSize:
    cfg = Config(**dict(zip(ARCH_FIELDS, arch)))  # training fields at their defaults: they build nothing
    with torch.device("meta"):
        model = create_model(cfg)
    convs, others = _folded_convs(model)
    params = sum(n + (cout if bias else 0) for n, cout, bias in convs) + others
    nbytes = (FLOAT32_BYTES * params if weights == "float32"
              else sum(conv_bytes(*conv) for conv in convs) + FLOAT32_BYTES * others)
    return ModelSize(weight_bytes=nbytes, params=params, macs=_macs(model, input_size))


def _folded_convs(model: nn.Module) -> tuple[list[tuple[int, int, bool]], int]:
    """(weights, output channels, has a bias) of every convolution of the folded model, and the number of
    parameters outside convolutions."""
    convs, counted = [], set()
    for module in model.modules():
        if isinstance(module, ConvBN):  # folded: a bias when the convolution had one or a batch norm
            conv = module.conv
            convs.append((conv.weight.numel(), conv.out_channels, conv.bias is not None or module.bn is not None))
            counted.update(id(p) for p in module.parameters())
        elif isinstance(module, nn.Conv2d) and id(module.weight) not in counted:  # heads: stored as they are
            convs.append((module.weight.numel(), module.out_channels, module.bias is not None))
            counted.update(id(p) for p in module.parameters())
    # Anything else (future layers) is stored as it is.
    return convs, sum(p.numel() for p in model.parameters() if id(p) not in counted)


def _macs(model: nn.Module, input_size: tuple[int, int]) -> int:
    total = 0

    def count(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total += output[0].numel() * per_output
        elif isinstance(module, nn.Linear):
            total += output[0].numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        width, height = input_size
        with torch.no_grad():
            model(torch.empty(1, 3, height, width, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every ``ConvBN``'s batch norm folded into its convolution."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if isinstance(module, ConvBN) and module.bn is not None:
            conv, bn = module.conv, module.bn
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
            bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
            folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                               padding=conv.padding, groups=conv.groups, bias=True)
            with torch.no_grad():
                folded.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
                folded.bias.copy_((bias - bn.running_mean) * scale + bn.bias.detach())
            module.conv, module.bn = folded, None
    return model


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of every tensor a saved state dict of ``model`` holds."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())
