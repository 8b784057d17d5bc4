"""Frame-grouped and team-held-out splits on a small hand-made ConeSet."""
from __future__ import annotations

import pytest
import torch

from cones.splits import describe_split, split
from cones.types import ConeSet


def make_set(frames_per_team=None) -> ConeSet:
    """Crops named <team>_<frame>_<cone>.png; frames hold 1 to 4 crops."""
    frames_per_team = frames_per_team or {"amz": 12, "pwrrt": 6, "tuwr": 5}
    names = [f"{team}_{f:05d}_{c}.png" for team, count in frames_per_team.items()
             for f in range(count) for c in range(1 + f % 4)]
    n = len(names)
    return ConeSet(
        images=torch.zeros(n, 3, 4, 3, dtype=torch.uint8),
        keypoints=torch.zeros(n, 7, 2),
        bad_quality=torch.zeros(n, dtype=torch.bool),
        names=tuple(names),
        teams=tuple(name.split("_")[0] for name in names),
        frames=tuple(name.rsplit("_", 1)[0] for name in names),
    )


def test_no_frame_straddles_train_and_val():
    data = make_set()
    for seed in range(5):
        train, val = split(data, val_fraction=0.3, seed=seed)
        assert not set(train.frames) & set(val.frames)
        assert len(train) + len(val) == len(data)


def test_val_fraction_is_roughly_met():
    data = make_set({"amz": 100})
    train, val = split(data, val_fraction=0.2)
    assert 0.2 <= len(val) / len(data) < 0.25  # whole frames of at most 4 crops overshoot a little


def test_val_teams_validate_on_whole_teams():
    data = make_set()
    train, val = split(data, val_teams=["tuwr"])
    assert set(val.teams) == {"tuwr"}
    assert "tuwr" not in train.teams
    assert len(val) == data.teams.count("tuwr")


def test_same_seed_same_split_other_seed_other_split():
    data = make_set()
    assert split(data, seed=3)[1].names == split(data, seed=3)[1].names
    assert split(data, val_fraction=0.3, seed=3)[1].names != split(data, val_fraction=0.3, seed=4)[1].names


def test_unknown_val_team_names_it_and_the_known_ones():
    with pytest.raises(ValueError, match="'fsg' is not in the data; known teams: amz, pwrrt, tuwr"):
        split(make_set(), val_teams=["fsg"])


def test_all_teams_in_val_is_refused():
    with pytest.raises(ValueError, match="nothing left to train on"):
        split(make_set(), val_teams=["amz", "pwrrt", "tuwr"])


def test_bad_val_fraction_is_refused():
    with pytest.raises(ValueError, match="val_fraction must be between 0 and 1.*got 1.5"):
        split(make_set(), val_fraction=1.5)


def test_describe_split_gives_sizes_and_teams():
    train, val = split(make_set(), val_teams=["tuwr"])
    assert describe_split(train, val) == (
        f"train {len(train)} crops / 18 frames (amz {train.teams.count('amz')}, pwrrt {train.teams.count('pwrrt')}), "
        f"val {len(val)} crops / 5 frames (tuwr {len(val)})")
