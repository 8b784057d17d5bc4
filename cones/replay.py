"""A small replay set: a few hundred shared crops packaged beside a model, so that adapting it on a machine
without the shared data still has crops of the cameras it learnt from to mix into every step.

    replay = select_replay(shared)             # REPLAY_CROPS crops, as many per team as the teams allow
    save_replay(replay, "models/default/replay.npz")
    replay = load_replay("models/default/replay.npz")

The selection is fixed by its seed, so the same data gives the same file. Teams get equal shares (a team with
fewer crops gives all it has, the rest go to the others), because the small cameras are the ones a fine-tune on a
new team would forget first; within a team the crops are spread over as many frames as the share allows.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from cones.types import ConeSet

REPLAY_CROPS = 400  # ~3.7 MB of uint8 crops before compression; what adapt mixes in 16 at a time
REPLAY_SEED = 0


def select_replay(data: ConeSet, crops: int = REPLAY_CROPS, seed: int = REPLAY_SEED) -> ConeSet:
    """``crops`` crops of ``data`` (all of them when it holds fewer), equal shares per team, frames first."""
    if crops < 1:
        raise ValueError(f"a replay set needs at least 1 crop, got {crops}")
    rng = np.random.default_rng(seed)
    by_team: dict[str, list[int]] = defaultdict(list)
    for i, team in enumerate(data.teams):
        by_team[team].append(i)
    order = {team: _frames_first(data, index, rng) for team, index in sorted(by_team.items())}
    shares = _shares({team: len(index) for team, index in order.items()}, min(crops, len(data)))
    picked = sorted(i for team, index in order.items() for i in index[:shares[team]])
    return data.subset(picked)


def _frames_first(data: ConeSet, index: list[int], rng: np.random.Generator) -> list[int]:
    """``index`` reordered so that every frame gives one crop before any frame gives a second."""
    frames: dict[str, list[int]] = defaultdict(list)
    for i in rng.permutation(index).tolist():
        frames[data.frames[i]].append(i)
    rounds: dict[int, list[int]] = defaultdict(list)
    for crops in frames.values():
        for rank, i in enumerate(crops):
            rounds[rank].append(i)
    return [i for rank in sorted(rounds) for i in rng.permutation(rounds[rank]).tolist()]


def _shares(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Equal shares of ``total`` over teams, a team capped at its size and its unused share spread on the rest."""
    shares = dict.fromkeys(sizes, 0)
    left = total
    while left > 0:
        open_teams = sorted(t for t in sizes if shares[t] < sizes[t])
        each, extra = divmod(left, len(open_teams))
        for k, team in enumerate(open_teams):
            give = min(each + (k < extra), sizes[team] - shares[team])
            shares[team] += give
            left -= give
    return shares


def save_replay(data: ConeSet, path: str | Path) -> Path:
    """One compressed ``.npz``: images uint8 (N, 3, H, W), keypoints float32 (N, 7, 2), tags, names, teams,
    frames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=data.images.numpy(), keypoints=data.keypoints.numpy(),
                        bad_quality=data.bad_quality.numpy(), names=np.array(data.names), teams=np.array(data.teams),
                        frames=np.array(data.frames))
    return path


def load_replay(path: str | Path) -> ConeSet:
    try:
        with np.load(Path(path), allow_pickle=False) as saved:
            return ConeSet(images=torch.from_numpy(saved["images"]).to(torch.uint8),
                           keypoints=torch.from_numpy(saved["keypoints"]).float(),
                           bad_quality=torch.from_numpy(saved["bad_quality"]).bool(),
                           names=tuple(saved["names"].tolist()), teams=tuple(saved["teams"].tolist()),
                           frames=tuple(saved["frames"].tolist()))
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: not a replay set save_replay wrote ({error})") from None
