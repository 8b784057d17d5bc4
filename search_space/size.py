"""Exact deployed size of a candidate, from the built model, without allocating weights.

A deployed model has batch norm folded into the preceding convolution (``fold_batch_norm``), so it stores
each convolution's weight plus one bias per output channel when the convolution had a bias or a batch
norm, and nothing of the batch norm itself. ``weight_bytes`` counts exactly that, in float32.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from search_space.config import ARCH_FIELDS, Config
from search_space.families.layers import ConvBN
from search_space.registry import create_model

DEFAULT_MAX_KB = 80
BYTES_PER_KB = 1024
INPUT_SIZE = (48, 64)  # (width, height)


def max_bytes(max_kb: float = DEFAULT_MAX_KB) -> int:
    if not max_kb > 0:
        raise ValueError(f"--max-kb must be > 0, got {max_kb}")
    return int(max_kb * BYTES_PER_KB)


@dataclass(frozen=True)
class ModelSize:
    weight_bytes: int  # float32 bytes of the folded model's tensors
    params: int  # deployed (folded) parameter count
    macs: int  # multiply-accumulates for one input crop

    @property
    def kb(self) -> float:
        return self.weight_bytes / BYTES_PER_KB


def measure(cfg: Config, input_size: tuple[int, int] = INPUT_SIZE) -> ModelSize:
    """Size of ``cfg`` as deployed; cached on the architecture fields, a few ms the first time."""
    return _measure(cfg.arch, input_size)


def weight_bytes(cfg: Config) -> int:
    return measure(cfg).weight_bytes


@lru_cache(maxsize=4096)
def _measure(arch: tuple, input_size: tuple[int, int]) -> ModelSize:
    cfg = Config(**dict(zip(ARCH_FIELDS, arch)))  # training fields at their defaults: they build nothing
    with torch.device("meta"):
        model = create_model(cfg)
    params = _folded_params(model)
    return ModelSize(weight_bytes=4 * params, params=params, macs=_macs(model, input_size))


def _folded_params(model: nn.Module) -> int:
    counted: set[int] = set()
    total = 0
    for module in model.modules():
        if isinstance(module, ConvBN):
            conv = module.conv
            total += conv.weight.numel()
            if conv.bias is not None or module.bn is not None:
                total += conv.out_channels
            counted.update(id(p) for p in module.parameters())
    # Anything outside a ConvBN (heads, future layers) is stored as it is.
    total += sum(p.numel() for p in model.parameters() if id(p) not in counted)
    return total


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
