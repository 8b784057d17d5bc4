"""The one object that crosses from the search to the model and the training loop."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

HEADS = ("linear", "sigmoid", "softmax")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
LOSSES = ("mse", "ce")
WEIGHT_FORMATS = ("float32", "int8")  # how a deployed model stores its weights (search_space.int8); a study's setting
# How --max-kb counts a KB of weights, and the search's default cap: here, without torch, so that the size
# module and the torch-free study reader (studies.reader, the analysis) share one definition.
BYTES_PER_KB = 1024
DEFAULT_MAX_KB = 80
SIGMA_LIMITS = (0.3, 10.0)  # heatmap std, px: below, the Gaussian is under a pixel; above, wider than a flank
ARCH = {"arch": True}  # field metadata: the field decides what ``create_model`` builds


@dataclass(frozen=True)
class Config:
    """A candidate: architecture plus training recipe.

    Architecture fields (``metadata=ARCH``) decide the network; the rest decide how it is trained. A new
    architecture field must carry ``ARCH``: sizes are cached on ``arch``, and ``tests/search_space/test_config.py``
    fails for a field that changes the network without it. ``loss="ce"`` (spatial cross-entropy) is only
    meaningful for the ``softmax`` head.
    """

    family: str = field(default="resnet", metadata=ARCH)
    width: int = field(default=8, metadata=ARCH)  # base channels
    depth: int = field(default=2, metadata=ARCH)  # blocks (resnet, plain) or resolution levels (unet, mobile)
    batch_norm: bool = field(default=False, metadata=ARCH)
    head: str = field(default="linear", metadata=ARCH)
    expand: int = field(default=2, metadata=ARCH)  # inverted-residual expansion ratio (mobile family only)
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
        for name in ("width", "depth", "expand", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)}")
        if not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not SIGMA_LIMITS[0] <= self.sigma <= SIGMA_LIMITS[1]:
            raise ValueError(f"sigma (heatmap std, px) must be in [{SIGMA_LIMITS[0]}, {SIGMA_LIMITS[1]}], "
                             f"got {self.sigma}")

    @property
    def arch(self) -> tuple:
        """The values of the architecture fields, in ``ARCH_FIELDS`` order (the key for size caches)."""
        return tuple(getattr(self, name) for name in ARCH_FIELDS)

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        """A config from JSON, types checked and never coerced (``"batch_norm": "no"`` is an error, not True)."""
        if not isinstance(d, dict):
            raise ValueError(f"a config is a JSON object of its fields, got {type(d).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(fields)
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(fields)}")
        for name, value in d.items():
            kind = type(getattr(cls, name))  # every field has a default of its type
            ok = (isinstance(value, bool) if kind is bool
                  else isinstance(value, int) and not isinstance(value, bool) if kind is int
                  else isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                  if kind is float else isinstance(value, kind))
            if not ok:
                want = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}[kind]
                raise ValueError(f"config {name} must be {want}, got {json.dumps(value)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


ARCH_FIELDS = tuple(f.name for f in dataclasses.fields(Config) if f.metadata.get("arch"))
