"""The search space: ``sample_config(trial, space) -> Config``, only ``trial.suggest_*`` calls.

Sizes are known before training, so the space keeps samples under the cap: ``SearchSpace.for_cap``
measures, once per study, the widest ``width`` that fits for every (family, depth, expand), and
``sample_config`` draws the width from 4 up to that. Depths whose narrowest model is already over the cap
are left out of the family's range.
"""
from __future__ import annotations

from dataclasses import dataclass

from search_space.config import HEADS, OPTIMIZERS, Config

FAMILY_DEPTHS = {"resnet": (1, 3), "unet": (2, 4), "mobile": (2, 4)}  # widest ranges considered
EXPANDS = (1, 4)  # mobile expansion ratio range
MIN_WIDTH, MAX_WIDTH = 4, 32  # wider models at 64 x 48 cost too much CPU time for their accuracy
LR_RANGE = (1e-4, 3e-2)
WEIGHT_DECAY_RANGE = (1e-6, 1e-2)
BATCH_SIZE_RANGE = (4, 128)
SIGMA_RANGE = (1.0, 3.0)
MOMENTUM_RANGE = (0.8, 0.99)


@dataclass(frozen=True)
class SearchSpace:
    max_bytes: int
    # (family, depth, expand) -> widest width within the cap; only entries where MIN_WIDTH fits
    widest: dict

    @classmethod
    def for_cap(cls, max_bytes: int) -> "SearchSpace":
        from search_space.size import weight_bytes  # the one place the space touches torch, once per study

        widest = {}
        for family, (low, high) in FAMILY_DEPTHS.items():
            expands = range(EXPANDS[0], EXPANDS[1] + 1) if family == "mobile" else (Config.expand,)
            for depth in range(low, high + 1):
                for expand in expands:
                    fits = [w for w in range(MIN_WIDTH, MAX_WIDTH + 1)
                            if weight_bytes(Config(family=family, width=w, depth=depth, expand=expand)) <= max_bytes]
                    if fits:
                        widest[(family, depth, expand)] = max(fits)
        if not widest:
            raise ValueError(f"no model of any family fits in {max_bytes} bytes; raise --max-kb")
        return cls(max_bytes, widest)

    def families(self) -> list[str]:
        return sorted({family for family, _, _ in self.widest})

    def depths(self, family: str) -> tuple[int, int]:
        depths = [d for f, d, _ in self.widest if f == family]
        return min(depths), max(depths)

    def expands(self, family: str, depth: int) -> tuple[int, int]:
        expands = [e for f, d, e in self.widest if f == family and d == depth]
        return min(expands), max(expands)


def sample_config(trial, space: SearchSpace) -> Config:
    family = trial.suggest_categorical("family", space.families())
    depth = trial.suggest_int("depth", *space.depths(family))
    expand = Config.expand
    if family == "mobile":
        expand = trial.suggest_int("expand", *space.expands(family, depth))
    widest = space.widest.get((family, depth, expand), MIN_WIDTH)
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
        expand=expand,
        optimizer=optimizer,
        lr=trial.suggest_float("lr", *LR_RANGE, log=True),
        momentum=momentum,
        batch_size=trial.suggest_int("batch_size", *BATCH_SIZE_RANGE, log=True),
        weight_decay=trial.suggest_float("weight_decay", *WEIGHT_DECAY_RANGE, log=True),
        sigma=trial.suggest_float("sigma", *SIGMA_RANGE),
        loss=loss,
    )


def trial_params(cfg: Config) -> dict:
    """The params ``sample_config`` would suggest to produce ``cfg``: what ``enqueue_trial`` needs."""
    params = {"family": cfg.family, "depth": cfg.depth, "width": cfg.width, "batch_norm": cfg.batch_norm,
              "head": cfg.head, "optimizer": cfg.optimizer, "lr": cfg.lr, "batch_size": cfg.batch_size,
              "weight_decay": cfg.weight_decay, "sigma": cfg.sigma}
    if cfg.family == "mobile":
        params["expand"] = cfg.expand
    if cfg.head == "softmax":
        params["loss"] = cfg.loss
    if cfg.optimizer in ("sgd", "rmsprop"):
        params["momentum"] = cfg.momentum
    return params
