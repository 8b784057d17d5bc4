"""The search space: ``sample_config(trial, space) -> Config``, only ``trial.suggest_*`` calls.

Sizes are known before training, so the space keeps samples under the cap: ``SearchSpace.for_cap``
measures, once per study, the widest ``width`` that fits for every (family, depth, knobs) in the study's weight
format (float32 or int8, whose cap holds about four times the parameters), and
``sample_config`` draws the width from 4 up to that. The families, their depth ranges and their own knobs
(mobile's ``expand``) come from the registry (``register_family(...)`` in each family's file); depths and
knob values whose narrowest model is already over the cap are left out of the family's range.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from search_space.cap import fits
from search_space.config import HEADS, OPTIMIZERS, Config

MIN_WIDTH, MAX_WIDTH = 4, 32  # wider models at 64 x 48 cost too much CPU time for their accuracy
LR_RANGE = (1e-4, 3e-2)
WEIGHT_DECAY_RANGE = (1e-6, 1e-2)
BATCH_SIZE_RANGE = (4, 128)
SIGMA_RANGE = (1.0, 3.0)
MOMENTUM_RANGE = (0.8, 0.99)


@dataclass(frozen=True)
class SearchSpace:
    max_bytes: int
    # (family, depth, knobs) -> widest width within the cap, only where MIN_WIDTH fits; knobs are the family's
    # own (name, value) pairs in its registered order, e.g. (("expand", 2),) for mobile and () for resnet
    widest: dict
    weights: str = "float32"  # the format the cap counts (search_space.size.measure)

    @classmethod
    def for_cap(cls, max_bytes: int, weights: str = "float32") -> "SearchSpace":
        # The one place the space touches torch (the registry builds models to measure), once per study.
        from search_space.registry import get_family, searched_families

        widest = {}
        for family in map(get_family, searched_families()):
            low, high = family.depths
            knob_values = product(*(range(lo, hi + 1) for lo, hi in family.knobs.values()))
            for depth, values in product(range(low, high + 1), knob_values):
                knobs = tuple(zip(family.knobs, values))
                fitting = [w for w in range(MIN_WIDTH, MAX_WIDTH + 1)
                           if fits(Config(family=family.name, width=w, depth=depth, **dict(knobs)), max_bytes,
                                   weights).ok]
                if fitting:
                    widest[(family.name, depth, knobs)] = max(fitting)
        if not widest:
            counted = "" if weights == "float32" else f" of {weights} weights"
            raise ValueError(f"no model of any family fits in {max_bytes} bytes{counted}; raise --max-kb")
        return cls(max_bytes, widest, weights)

    def holds(self, cfg: Config) -> bool:
        """Whether the space samples ``cfg``'s architecture: its width within the widest that fits the cap."""
        widest = self.widest.get(arch_key(cfg))
        return widest is not None and cfg.width <= widest

    def families(self) -> list[str]:
        return sorted({family for family, _, _ in self.widest})

    def depths(self, family: str) -> tuple[int, int]:
        depths = [d for f, d, _ in self.widest if f == family]
        return min(depths), max(depths)

    def knobs(self, family: str) -> tuple[str, ...]:
        """The family's own knobs, in sampling order."""
        return next((tuple(name for name, _ in knobs) for f, _, knobs in self.widest if f == family), ())

    def knob_range(self, family: str, depth: int, name: str, chosen: tuple = ()) -> tuple[int, int]:
        """The range of knob ``name`` at ``depth`` given the family's knobs sampled before it, ``chosen`` as
        (name, value) pairs; a knob the family does not have stays at the Config default."""
        values = [dict(knobs)[name] for f, d, knobs in self.widest
                  if f == family and d == depth and knobs[:len(chosen)] == chosen and name in dict(knobs)]
        if not values:
            return getattr(Config, name), getattr(Config, name)
        return min(values), max(values)

    def expands(self, family: str, depth: int) -> tuple[int, int]:
        return self.knob_range(family, depth, "expand")


def sample_config(trial, space: SearchSpace) -> Config:
    family = trial.suggest_categorical("family", space.families())
    depth = trial.suggest_int("depth", *space.depths(family))
    knobs = ()
    for name in space.knobs(family):
        knobs += ((name, trial.suggest_int(name, *space.knob_range(family, depth, name, knobs))),)
    widest = space.widest.get((family, depth, knobs), MIN_WIDTH)
    width = trial.suggest_int("width", MIN_WIDTH, widest)
    batch_norm = trial.suggest_categorical("batch_norm", [False, True])
    head = trial.suggest_categorical("head", list(HEADS))
    loss = trial.suggest_categorical("loss", ["mse", "ce"]) if head == "softmax" else "mse"
    optimizer = trial.suggest_categorical("optimizer", list(OPTIMIZERS))
    momentum = trial.suggest_float("momentum", *MOMENTUM_RANGE) if optimizer in ("sgd", "rmsprop") else 0.9
    return Config(
        family=family,
        width=width,
        depth=depth,
        batch_norm=batch_norm,
        head=head,
        optimizer=optimizer,
        lr=trial.suggest_float("lr", *LR_RANGE, log=True),
        momentum=momentum,
        batch_size=trial.suggest_int("batch_size", *BATCH_SIZE_RANGE, log=True),
        weight_decay=trial.suggest_float("weight_decay", *WEIGHT_DECAY_RANGE, log=True),
        sigma=trial.suggest_float("sigma", *SIGMA_RANGE),
        loss=loss,
        **dict(knobs),
    )


def trial_params(cfg: Config) -> dict:
    """The params ``sample_config`` would suggest to produce ``cfg``: what ``enqueue_trial`` needs.

    Found by running ``sample_config`` on a space pinned to ``cfg``'s architecture with a trial that answers
    every suggestion from ``cfg`` (params are named as Config fields), so it never needs editing.
    """
    recorder = _Recorder(cfg)
    sample_config(recorder, SearchSpace(max_bytes=0, widest={arch_key(cfg): cfg.width}))
    return recorder.params


def arch_key(cfg: Config) -> tuple:
    """(family, depth, knobs as (name, value) pairs): how ``SearchSpace.widest`` keys ``cfg``'s architecture."""
    from search_space.registry import get_family  # builds models: torch, which the space's readers avoid

    return cfg.family, cfg.depth, tuple((name, getattr(cfg, name)) for name in get_family(cfg.family).knobs)


class _Recorder:
    """A stand-in trial: each ``suggest_*`` returns ``cfg``'s field of that name and notes it."""

    def __init__(self, cfg: Config):
        self.cfg, self.params = cfg, {}

    def _suggest(self, name: str, *_range, **_options):
        self.params[name] = getattr(self.cfg, name)
        return self.params[name]

    suggest_categorical = suggest_int = suggest_float = _suggest


def __getattr__(name: str):
    # Derived from the registry, for modules that import the old constant (benchmarks/train_throughput.py);
    # lazy so that importing the space does not import torch.
    if name == "FAMILY_DEPTHS":
        from search_space.registry import families, get_family

        return {family: get_family(family).depths for family in families()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
