"""cones/replay.py: equal shares per team, every frame before any frame twice, the same file for the same seed."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from cones.replay import load_replay, save_replay, select_replay
from cones.synthetic import make_synthetic, with_teams


@pytest.fixture(scope="module")
def teams():
    """ka 24 crops, kb 24, kc 8 (6 frames of 4 crops each for ka and kb)."""
    big = with_teams(make_synthetic(48, seed=5), ["ka", "kb"])
    small = with_teams(make_synthetic(8, seed=6), ["kc"])
    return big, small


def _merged(a, b):
    from cones.types import ConeSet
    return ConeSet(torch.cat([a.images, b.images]), torch.cat([a.keypoints, b.keypoints]),
                   torch.cat([a.bad_quality, b.bad_quality]), a.names + b.names, a.teams + b.teams, a.frames + b.frames)


def test_teams_get_equal_shares_and_a_small_team_gives_all_it_has(teams):
    data = _merged(*teams)
    counts = Counter(select_replay(data, 30).teams)
    assert counts["kc"] == 8 and counts["ka"] + counts["kb"] == 22 and abs(counts["ka"] - counts["kb"]) <= 1
    assert len(select_replay(data, 1000)) == len(data)


def test_every_frame_gives_a_crop_before_any_gives_two(teams):
    ka = teams[0].subset([i for i, t in enumerate(teams[0].teams) if t == "ka"])
    frames = set(ka.frames)
    picked = select_replay(ka, len(frames))
    assert set(picked.frames) == frames


def test_same_seed_same_crops_and_the_file_round_trips(teams, tmp_path):
    data = _merged(*teams)
    first, again, other = select_replay(data, 20, seed=0), select_replay(data, 20, seed=0), select_replay(data, 20, seed=1)
    assert first.names == again.names and first.names != other.names
    loaded = load_replay(save_replay(first, tmp_path / "replay.npz"))
    assert loaded.names == first.names and loaded.teams == first.teams and loaded.frames == first.frames
    assert torch.equal(loaded.images, first.images) and torch.equal(loaded.keypoints, first.keypoints)
    assert loaded.images.dtype == torch.uint8


def test_a_file_that_is_not_a_replay_set_is_named(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a replay set"):
        load_replay(tmp_path / "x.npz")
