"""Model families registered by name: adding a family is one file in ``search_space/families/`` and one decorator.

Each family's decorator carries its metadata (depth range, family-only knobs, memory format, whether the
search samples it); the search space and the tests read it from here. ``docs/adding-a-family.md`` walks through
an example.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from search_space.config import ARCH_FIELDS, Config


@dataclass(frozen=True)
class Family:
    name: str
    build: Callable[[Config], nn.Module]
    depths: tuple[int, int]  # (lowest, highest) depth the search considers
    knobs: dict[str, tuple[int, int]]  # family-only integer Config fields -> (lowest, highest), in sampling order
    channels_last: bool  # trains faster in channels-last memory format on CPU
    searched: bool  # the search space samples it
    labels: dict[str, str] = field(default_factory=dict)  # knob -> how a trial line prints it, "x{}": "x2"


_FAMILIES: dict[str, Family] = {}
_loaded = False


def register_family(name: str, *, depths: tuple[int, int], knobs: dict[str, tuple[int, int]] | None = None,
                    labels: dict[str, str] | None = None, channels_last: bool = True, searched: bool = True):
    """Decorator: ``@register_family("resnet", depths=(1, 3))`` over a ``build(cfg) -> nn.Module``.

    depths: the (lowest, highest) ``cfg.depth`` the search considers; depths whose narrowest model is over the
    cap are left out per study.
    knobs: integer architecture fields only this family reads, with the (lowest, highest) value the search
    considers, e.g. ``{"expand": (1, 4)}``; sampled after ``depth``, in this order. Other families keep the
    field's default.
    labels: how the search's trial lines print a knob, a format of its value, e.g. ``{"expand": "x{}"}`` ("x2");
    a knob without one prints as its name and value ("expand2").
    channels_last: whether the family trains faster in channels-last memory format on CPU (dense 3x3
    convolutions do, about 1.5-2x; depthwise-heavy networks do not).
    searched: False keeps the family out of the search space while the tests, ``--config`` files and the
    export still accept it.
    """
    knobs, labels = dict(knobs or {}), dict(labels or {})
    _check_range(name, "depths", depths)
    possible = [f for f in ARCH_FIELDS if type(getattr(Config, f)) is int and f not in ("width", "depth")]
    for knob, bounds in knobs.items():
        if knob not in possible:
            raise ValueError(f"family {name!r}: knob {knob!r} is not an integer architecture field of Config; "
                             f"possible knobs: {possible}, or add a field with metadata=ARCH to "
                             "search_space/config.py")
        _check_range(name, f"knob {knob!r}", bounds)
    for knob in labels:
        if knob not in knobs:
            raise ValueError(f"family {name!r}: label for {knob!r}, which is not one of its knobs {sorted(knobs)}")

    def add(build: Callable[[Config], nn.Module]):
        if name in _FAMILIES:
            raise ValueError(f"family {name!r} is registered twice")
        _FAMILIES[name] = Family(name, build, tuple(depths), knobs, channels_last, searched, labels)
        return build

    return add


def _check_range(family: str, what: str, bounds) -> None:
    if not (len(bounds) == 2 and all(isinstance(b, int) for b in bounds) and 1 <= bounds[0] <= bounds[1]):
        raise ValueError(f"family {family!r}: {what} must be (lowest, highest) integers with 1 <= lowest <= highest, "
                         f"got {bounds!r}")


def get_family(name: str) -> Family:
    _load_families()
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; known families: {', '.join(sorted(_FAMILIES))}") from None


def families() -> tuple[str, ...]:
    """Every registered family, searched or not."""
    _load_families()
    return tuple(sorted(_FAMILIES))


def searched_families() -> tuple[str, ...]:
    """The families the search space samples."""
    return tuple(name for name in families() if _FAMILIES[name].searched)


def describe_knobs(cfg: dict) -> list[str]:
    """The family's own knobs of a config (as ``Config.to_dict`` gives it) as its file labels them: ["x2"] for a
    mobile config; none for a family without knobs, or one not registered."""
    _load_families()
    family = _FAMILIES.get(cfg.get("family"))
    if family is None:
        return []
    return [family.labels.get(knob, knob + "{}").format(cfg.get(knob, getattr(Config, knob))) for knob in family.knobs]


def memory_format(cfg: Config) -> torch.memory_format:
    _load_families()
    family = _FAMILIES.get(cfg.family)
    return torch.channels_last if family is None or family.channels_last else torch.contiguous_format


def create_model(cfg: Config) -> nn.Module:
    """Build the network for ``cfg``: input (N, 3, H, W) in [0, 1], output heatmaps (N, 7, H, W)."""
    return get_family(cfg.family).build(cfg)


def _load_families() -> None:
    # Importing every module of the package runs its decorators; a new family file needs no edit here.
    global _loaded
    if _loaded:
        return
    _loaded = True
    import search_space.families as package

    try:
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
    except BaseException:
        _loaded = False
        raise
