"""Train/validation splits that never put one source frame on both sides.

Crops of one frame share the scene and the light, often the same cone twice: a per-crop split leaks.
``val_teams`` goes further and validates on whole teams, i.e. on a camera the model never saw.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from cones.types import ConeSet


def split(data: ConeSet, val_fraction: float = 0.1, val_teams: Sequence[str] | None = None,
          seed: int = 0) -> tuple[ConeSet, ConeSet]:
    """(train, val). Whole frames go to validation until it holds ``val_fraction`` of the crops, in an order
    fixed by ``seed``; with ``val_teams`` every crop of those teams is validation and ``val_fraction`` is unused.
    """
    if isinstance(val_teams, str):
        val_teams = [val_teams]
    if val_teams:
        known = sorted(set(data.teams))
        unknown = [t for t in val_teams if t not in known]
        if unknown:
            raise ValueError(f"val team {unknown[0]!r} is not in the data; known teams: {', '.join(known)}")
        in_val = np.array([team in val_teams for team in data.teams], dtype=bool)
        if in_val.all():
            raise ValueError(f"val teams {', '.join(val_teams)} are all the data, nothing left to train on; "
                             f"leave at least one of {', '.join(known)} out")
    else:
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
        in_val = _frames_for_val(data.frames, val_fraction, seed)
    return data.subset(np.flatnonzero(~in_val)), data.subset(np.flatnonzero(in_val))


def _frames_for_val(frames: tuple[str, ...], val_fraction: float, seed: int) -> np.ndarray:
    sizes = Counter(frames)
    if len(sizes) < 2:
        raise ValueError(f"need at least 2 frames to split by frame, got {len(sizes)}")
    # Sorted first so the permutation, not the order of the files, decides.
    order = np.random.default_rng(seed).permutation(sorted(sizes))
    target = max(1, round(val_fraction * len(frames)))
    val_frames, count = set(), 0
    for frame in order[:-1]:  # the last frame always trains, so train is never empty
        if count >= target:
            break
        val_frames.add(frame)
        count += sizes[frame]
    return np.array([f in val_frames for f in frames], dtype=bool)


def describe_split(train: ConeSet, val: ConeSet) -> str:
    """``train 3,081 crops / 803 frames (amz 1,797, ...), val 342 crops / 89 frames (amz 200, ...)``"""
    return f"train {_describe(train)}, val {_describe(val)}"


def _describe(data: ConeSet) -> str:
    teams = ", ".join(f"{team} {n:,}" for team, n in sorted(Counter(data.teams).items()))
    return f"{len(data):,} crops / {len(set(data.frames)):,} frames ({teams or 'empty'})"
