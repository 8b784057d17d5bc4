"""The shared, hand-labelled cone export loads as DATA.md describes it.

Where the data is looked for: tests/real_data.py.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from cones.load import load_export
from cones.splits import split
from tests.real_data import real_data_dir

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return real_data_dir()


@pytest.fixture(scope="module")
def loaded(data_dir, tmp_path_factory):
    # A private cache, so this decodes every file rather than trusting a cache built by older code.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEYPOINT_NAS_CACHE", str(tmp_path_factory.mktemp("cache")))
        return load_export(data_dir, log=lambda line: None)


def test_counts_match_data_md(loaded, data_dir):
    data, report = loaded
    assert report.summary() == f"{data_dir.name}: 3,423 loaded, 29 skipped (wrong point count 29)"
    assert data.images.shape == (3423, 3, 64, 48)
    assert int(data.bad_quality.sum()) == 977  # of the 984 tagged files, 7 are skipped for their point count


def test_team_and_frame_counts(loaded):
    data, _ = loaded
    assert Counter(data.teams) == {"amz": 1984, "pwrrt": 787, "tuwr": 652}
    assert len(set(data.frames)) == 891


def test_every_cone_is_in_canonical_geometry(loaded):
    kp = loaded[0].keypoints  # (N, 7, 2): base-right, mid-right, upper-right, top, upper-left, mid-left, base-left
    x, y = kp[..., 0], kp[..., 1]
    # <=: in two files a flank point sits as high as the top
    assert (y[:, 3:4] <= y).all(), "top must have the smallest y"
    assert (x[:, :3] > x[:, [6, 5, 4]]).all(), "each right-flank point must lie right of its left partner"
    for flank in ([0, 1, 2], [6, 5, 4]):  # base to upper
        assert (y[:, flank[0]] >= y[:, flank[1]]).all() and (y[:, flank[1]] >= y[:, flank[2]]).all()


def test_files_clicked_in_another_order_are_reordered(loaded, data_dir):
    data, _ = loaded
    reordered = set()
    for name, points in zip(data.names, data.keypoints.tolist()):
        meta = json.loads((data_dir / "ann" / f"{name}.json").read_text())
        if [o["points"]["exterior"][0] for o in meta["objects"]] != points:
            reordered.add(name)
    # 12 cones lying on their side and 1 tipped toward the camera (their JSON order follows the cone, so "top =
    # smallest y" relabels them), plus amz_00056_2, whose points miss the apex and repeat the base-left one.
    assert len(reordered) == 14
    assert {"amz_00320_0.png", "tuwr_00251_0.png", "amz_00056_2.png"} <= reordered


def test_no_frame_straddles_the_split(loaded):
    train, val = split(loaded[0], val_fraction=0.1, seed=0)
    assert not set(train.frames) & set(val.frames)
    assert 0.09 < len(val) / len(loaded[0]) < 0.12


def test_val_teams_tuwr_validates_on_tuwr_only(loaded):
    train, val = split(loaded[0], val_teams=["tuwr"])
    assert set(val.teams) == {"tuwr"} and len(val) == 652
    assert "tuwr" not in train.teams
