"""Model families registered by name: adding a family is one file and one decorator."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from search_space.config import Config

_FAMILIES: dict[str, Callable[[Config], nn.Module]] = {}
_CHANNELS_LAST: dict[str, bool] = {}


def register_family(name: str, channels_last: bool = True):
    """Decorator: ``@register_family("resnet")`` over a ``build(cfg) -> nn.Module``.

    channels_last: whether the family trains faster in channels-last memory format on CPU (dense 3x3
    convolutions do, about 1.5-2x; depthwise-heavy networks do not).
    """

    def add(build: Callable[[Config], nn.Module]):
        if name in _FAMILIES:
            raise ValueError(f"family {name!r} is registered twice")
        _FAMILIES[name] = build
        _CHANNELS_LAST[name] = channels_last
        return build

    return add


def memory_format(cfg: Config) -> torch.memory_format:
    _load_builtin()
    return torch.channels_last if _CHANNELS_LAST.get(cfg.family, True) else torch.contiguous_format


def families() -> tuple[str, ...]:
    _load_builtin()
    return tuple(sorted(_FAMILIES))


def create_model(cfg: Config) -> nn.Module:
    """Build the network for ``cfg``: input (N, 3, H, W) in [0, 1], output heatmaps (N, 7, H, W)."""
    _load_builtin()
    try:
        build = _FAMILIES[cfg.family]
    except KeyError:
        raise ValueError(f"unknown family {cfg.family!r}; known families: {', '.join(sorted(_FAMILIES))}") from None
    return build(cfg)


def _load_builtin() -> None:
    # Importing the modules runs their decorators.
    from search_space.families import mobile, resnet, unet  # noqa: F401
