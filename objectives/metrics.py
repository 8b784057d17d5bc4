"""Keypoint accuracy in pixels, the way a team judges a model."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from typing import Sequence

import torch

PCK_THRESHOLDS = (1.0, 2.0, 3.0)


@dataclass(frozen=True)
class Metrics:
    mean_px: float  # mean Euclidean error over all keypoints of all crops
    median_px: float
    per_keypoint_px: tuple[float, ...]  # mean error per keypoint, canonical order
    pck1: float  # fraction of keypoints within 1 px
    pck2: float
    pck3: float
    heatmap_mse: float  # the original study's figure: MSE between output and target heatmaps

    @classmethod
    def failed(cls, keypoints: int = 7) -> "Metrics":
        """What a run that produced no usable output (diverged) scores."""
        return cls(math.inf, math.inf, (math.inf,) * keypoints, 0.0, 0.0, 0.0, math.inf)

    def to_dict(self, prefix: str = "") -> dict:
        return {prefix + k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


def keypoint_metrics(predicted: torch.Tensor, truth: torch.Tensor, heatmap_mse: float,
                     teams: Sequence[str] | None = None) -> Metrics:
    """predicted, truth: (N, K, 2) pixels. With ``teams`` (one per crop), ``mean_px`` is the mean of each team's
    mean error, so every camera counts once however many crops it has; the other figures pool all crops."""
    error = torch.linalg.vector_norm(predicted.double() - truth.double(), dim=-1)  # (N, K)
    if not torch.isfinite(error).all():
        return Metrics.failed(truth.shape[1])
    flat = error.flatten()
    return Metrics(
        mean_px=team_mean(error, teams) if teams is not None else flat.mean().item(),
        median_px=flat.median().item(),
        per_keypoint_px=tuple(error.mean(dim=0).tolist()),
        pck1=(flat <= PCK_THRESHOLDS[0]).double().mean().item(),
        pck2=(flat <= PCK_THRESHOLDS[1]).double().mean().item(),
        pck3=(flat <= PCK_THRESHOLDS[2]).double().mean().item(),
        heatmap_mse=heatmap_mse,
    )


def team_mean(error: torch.Tensor, teams: Sequence[str]) -> float:
    """The mean over teams of each team's mean error; ``error`` (N, K), ``teams`` one name per crop."""
    if len(teams) != error.shape[0]:
        raise ValueError(f"{len(teams)} team names for {error.shape[0]} crops")
    names = sorted(set(teams))
    index = torch.tensor([names.index(team) for team in teams])
    per_crop = error.mean(dim=1)
    return torch.stack([per_crop[index == i].mean() for i in range(len(names))]).mean().item()
