"""The in-memory cone set every part of the project passes around."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch

# Canonical keypoint order; right = larger x in the image.
KEYPOINT_NAMES = ("base_right", "mid_right", "upper_right", "top", "upper_left", "mid_left", "base_left")
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
# A horizontal flip turns keypoint i into keypoint FLIP_PERMUTATION[i].
FLIP_PERMUTATION = (6, 5, 4, 3, 2, 1, 0)
# Working size of a crop, (width, height) in pixels.
DEFAULT_SIZE = (48, 64)


@dataclass(frozen=True)
class ConeSet:
    """Decoded crops with their keypoints, all in memory.

    images:      (N, 3, H, W) uint8 RGB
    keypoints:   (N, 7, 2) float32 (x, y) pixels, canonical order
    bad_quality: (N,) bool, the Supervisely ``bad quality`` tag
    names:       file names (``amz_00000_0.png``); teams and frames (``amz_00000``) per sample
    """

    images: torch.Tensor
    keypoints: torch.Tensor
    bad_quality: torch.Tensor
    names: tuple[str, ...]
    teams: tuple[str, ...]
    frames: tuple[str, ...]

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if not (self.keypoints.shape == (n, NUM_KEYPOINTS, 2) and self.bad_quality.shape == (n,)
                and len(self.names) == len(self.teams) == len(self.frames) == n):
            raise ValueError(f"ConeSet fields disagree on the sample count ({n} images)")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the crops."""
        return self.images.shape[3], self.images.shape[2]

    def fingerprint(self) -> str:
        """A short hash of the crops, keypoints, tags and names: equal for equal data wherever and whenever it
        was copied (file times do not enter it), so runs cached against it survive a fresh copy of an export."""
        digest = hashlib.sha256()
        for tensor in (self.images, self.keypoints, self.bad_quality):
            digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
            digest.update(tensor.contiguous().numpy().tobytes())
        digest.update(json.dumps([self.names, self.teams, self.frames]).encode())
        return f"data-{digest.hexdigest()[:16]}"

    def subset(self, index) -> "ConeSet":
        index = torch.as_tensor(index, dtype=torch.long)
        picked = index.tolist()
        return ConeSet(
            images=self.images[index],
            keypoints=self.keypoints[index],
            bad_quality=self.bad_quality[index],
            names=tuple(self.names[i] for i in picked),
            teams=tuple(self.teams[i] for i in picked),
            frames=tuple(self.frames[i] for i in picked),
        )
