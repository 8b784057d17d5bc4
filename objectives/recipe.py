"""How a config is trained for shipping, and how its model is read out: named, comparable recipes.

A recipe is what ``benchmarks/generalisation.py`` measures leave-one-team-out and ``runners/retrain.py``
trains with. Training fields (epochs, augmentation, weight averaging) decide the weights; inference fields
(flip averaging, decoder) only how heatmaps become keypoints, so one trained model is scored under every
inference choice at once. Which levers the shipped recipe keeps, and the measurements behind them, are in
``docs/decisions.md``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from cones.augment import AugmentConfig
from objectives.heatmaps import DECODERS, inference_name
from objectives.train import ShapeLoss
from search_space.config import Config

# Bump when the training loop changes what a recipe's runs produce, so cached benchmark runs are not reused.
TRAINING_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    epochs: int = 30  # cosine schedule over this many epochs, last epoch's weights
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    ema: float | None = None  # decay per step of the weight average that is evaluated and shipped
    shape: ShapeLoss = field(default_factory=ShapeLoss)  # loss terms on the expected keypoints (off by default)
    balance_teams: bool = False  # every training team drawn equally often
    teacher_width: int | None = None  # distil from the same config this wide, trained with this recipe sans teacher
    distill: float = 1.0  # weight of the distillation term (with teacher_width)
    flip_test: bool = False  # inference: average the heatmaps of the crop and of its mirror image
    decoder: str = "parabola"  # inference: "parabola" (argmax + parabola) or "local" (argmax + window mean)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"recipe epochs must be >= 1, got {self.epochs}")
        if self.decoder not in DECODERS:
            raise ValueError(f"recipe decoder must be one of {sorted(DECODERS)}, got {self.decoder!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ValueError(f"recipe ema must be a decay in (0, 1), got {self.ema}")

    def training(self) -> dict:
        """The fields that decide the trained weights (the benchmark's cache key)."""
        fields = {"version": TRAINING_VERSION, "epochs": self.epochs,
                  "augmentation": dataclasses.asdict(self.augmentation), "ema": self.ema}
        # Later levers join the key only when on, so the keys of runs cached before they existed stay valid.
        if self.shape:
            fields["shape"] = dataclasses.asdict(self.shape)
        if self.balance_teams:
            fields["balance_teams"] = True
        if self.teacher_width is not None:
            fields["teacher"] = {"width": self.teacher_width, "distill": self.distill}
        return fields

    def teacher(self, cfg: Config) -> tuple[Config, "Recipe"] | None:
        """The teacher's config and recipe (this one without the teacher), or None without distillation."""
        if self.teacher_width is None:
            return None
        return cfg.replace(width=self.teacher_width), self.replace(teacher_width=None, distill=1.0)

    def train_kwargs(self) -> dict:
        """The keywords of ``objectives.train.train`` this recipe sets."""
        return {"augmentation": self.augmentation, "ema": self.ema, "shape": self.shape if self.shape else None,
                "balance_teams": self.balance_teams, **({"distill": self.distill} if self.teacher_width else {})}

    @property
    def inference(self) -> str:
        """``parabola``, ``local``, ``flip+parabola`` or ``flip+local``: the benchmark's name for it."""
        return inference_name(self.flip_test, self.decoder)

    def to_dict(self) -> dict:
        return {**self.training(), "flip_test": self.flip_test, "decoder": self.decoder}

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)


INFERENCE_VARIANTS = tuple((flip, decoder) for flip in (False, True) for decoder in DECODERS)

# "today": what runners/retrain.py trained with before ship mode (every augmentation of the search, cosine).
RECIPES: dict[str, Recipe] = {
    "today": Recipe(),
    "framing": Recipe(augmentation=AugmentConfig.framing()),
    "framing-ema": Recipe(augmentation=AugmentConfig.framing(), ema=0.998),
    "ema": Recipe(ema=0.998),
    "framing-long": Recipe(epochs=45, augmentation=AugmentConfig.framing()),
    "framing-coord": Recipe(augmentation=AugmentConfig.framing(), shape=ShapeLoss(coordinate=0.1)),
    "framing-line": Recipe(augmentation=AugmentConfig.framing(), shape=ShapeLoss(line=0.1)),
    "framing-balanced": Recipe(augmentation=AugmentConfig.framing(), balance_teams=True),
    "coord": Recipe(shape=ShapeLoss(coordinate=0.1)),
    "coord-long": Recipe(epochs=60, shape=ShapeLoss(coordinate=0.1)),
    "coord-distill": Recipe(shape=ShapeLoss(coordinate=0.1), teacher_width=12),
}
# What retrain ships: the levers that lowered the leave-one-team-out error on two seeds (docs/decisions.md):
# the coordinate term, 60 epochs and the window-mean decoder. Flip averaging also helps but doubles the
# latency, so it is retrain's --flip-test, not the default; the framing augmentation, EMA and distillation did
# not help and are not kept.
RECIPES["ship"] = RECIPES["coord-long"].replace(decoder="local")
