"""What every trial of one study shares (``TrialSettings``), and what the study's objectives are called."""
from __future__ import annotations

from dataclasses import dataclass, field

from cones.augment import AugmentConfig

DEFAULT_EPOCHS = 12  # the most epochs one trial trains: runners/search.py --epochs, and the ablation's default


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of one study shares."""

    max_bytes: int
    max_epochs: int
    objectives: tuple[str, ...] = ("error",)  # or ("error", "size")
    seed: int = 0
    threads: int | None = None
    reduction_factor: int = 3  # rungs at 1, 3, 9, ... epochs (the pruner and the multi-objective rule)
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    reference_bar: bool = True  # stop settled trials (``reference_bar``); off with --no-early-stopping
    weights: str = "float32"  # what the cap counts and the score measures: "int8" quantizes each trained trial
    # Successive halving's rungs: "epochs" or "seconds" (search_engine.rungs: early trials judged against the hand
    # designs), or "optuna" (Optuna's SuccessiveHalvingPruner, the rule before issue 16). Why epochs:
    # docs/decisions.md, "The first hour".
    rungs: str = "epochs"
    # A trial that beats the study's best is trained again with the next seed and scored by the two seeds' mean
    # (``confirm_below``), so the best is not one seed's luck; off with --no-confirm. Why: docs/decisions.md,
    # "The first hour".
    confirm: bool = True
    # Validation on several teams scores the mean of the per-team errors (each camera counts once, not by its crop
    # count); search sets it when --val-teams names more than one team.
    val_by_team: bool = False

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1


def directions(objectives: tuple[str, ...]) -> list[str]:
    return ["minimize"] * len(objectives)


def metric_names(objectives: tuple[str, ...]) -> list[str]:
    names = {"error": "val_mean_px", "size": "weight_kb"}
    return [names[o] for o in objectives]
