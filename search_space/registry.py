"""Model families registered by name: adding a family is one file and one decorator."""
from __future__ import annotations

from typing import Callable

from torch import nn

from search_space.config import Config

_FAMILIES: dict[str, Callable[[Config], nn.Module]] = {}


def register_family(name: str):
    """Decorator: ``@register_family("resnet")`` over a ``build(cfg) -> nn.Module``."""

    def add(build: Callable[[Config], nn.Module]):
        if name in _FAMILIES:
            raise ValueError(f"family {name!r} is registered twice")
        _FAMILIES[name] = build
        return build

    return add


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
