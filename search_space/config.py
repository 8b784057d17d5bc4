"""The one object that crosses from the search to the model and the training loop."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

HEADS = ("linear", "sigmoid", "softmax")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
LOSSES = ("mse", "ce")


@dataclass(frozen=True)
class Config:
    """A candidate: architecture plus training recipe.

    Architecture fields (``family`` .. ``expand``) decide the weights; the rest decide how they are trained.
    ``loss="ce"`` (spatial cross-entropy) is only meaningful for the ``softmax`` head.
    """

    family: str = "resnet"
    width: int = 8  # base channels
    depth: int = 2  # residual blocks (resnet) or resolution levels (unet, mobile)
    batch_norm: bool = False
    head: str = "linear"
    expand: int = 2  # inverted-residual expansion ratio (mobile family only)
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd and rmsprop only
    batch_size: int = 64
    weight_decay: float = 0.0
    sigma: float = 1.5  # heatmap Gaussian std, pixels
    loss: str = "mse"

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.loss == "ce" and self.head != "softmax":
            raise ValueError(f"loss='ce' needs head='softmax', got head={self.head!r}")
        if self.width < 1 or self.depth < 1:
            raise ValueError(f"width and depth must be >= 1, got width={self.width}, depth={self.depth}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    @property
    def arch(self) -> tuple:
        """The fields that decide the weights (the key for size caches)."""
        return (self.family, self.width, self.depth, self.batch_norm, self.head, self.expand)

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
