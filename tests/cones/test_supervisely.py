"""Reading Supervisely exports: tiny exports are drawn with cv2 and written to tmp_path by each test."""
from __future__ import annotations

import json
import os
import sys
import types

import cv2
import numpy as np
import pytest
import torch

from cones.cache import cache_path
from cones.load import load_data, load_export
from cones.supervisely import ExportError, canonical_order, parse_name

# base-right, mid-right, upper-right, top, upper-left, mid-left, base-left on a 48 x 64 crop
CONE = [[36, 52], [33, 36], [30, 22], [24, 8], [17, 23], [14, 37], [12, 51]]


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYPOINT_NAS_CACHE", str(tmp_path / "cache"))


def write_sample(root, name, points=CONE, size=(48, 64), tags=(), color=(0, 0, 255), image=True):
    """One crop: a filled cone (BGR ``color``) through the points' outline, and its JSON."""
    (root / "ann").mkdir(parents=True, exist_ok=True)
    (root / "img").mkdir(exist_ok=True)
    if image:
        canvas = np.full((size[1], size[0], 3), 90, np.uint8)
        cv2.fillPoly(canvas, [np.array(points, np.int32).reshape(-1, 1, 2)], color)
        cv2.imwrite(str(root / "img" / name), canvas)
    meta = {
        "size": {"width": size[0], "height": size[1]},
        "tags": [{"name": t, "value": None} for t in tags],
        "objects": [{"geometryType": "point", "classTitle": "Top", "points": {"exterior": [p], "interior": []}}
                    for p in points],
    }
    (root / "ann" / f"{name}.json").write_text(json.dumps(meta))


def quiet(_line):
    pass


def test_shuffled_points_come_out_canonical(tmp_path):
    shuffled = [CONE[i] for i in (3, 6, 0, 4, 1, 5, 2)]
    write_sample(tmp_path, "amz_00000_0.png", points=shuffled)
    data = load_data(tmp_path, log=quiet)
    assert data.keypoints[0].tolist() == CONE


def test_canonical_order_is_independent_of_input_order():
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert canonical_order(np.array(CONE)[rng.permutation(7)]).tolist() == CONE


def test_leaning_cone_keeps_its_flanks():
    # Leaning right: upper-left (x 30) lies right of base-right (x 28), so a split by x would mix the flanks.
    leaning = [[28, 56], [34, 40], [40, 24], [46, 8], [30, 20], [20, 34], [10, 50]]
    assert canonical_order(np.array(leaning)[::-1]).tolist() == leaning


def test_six_points_skipped_and_counted(tmp_path):
    write_sample(tmp_path, "amz_00000_0.png")
    write_sample(tmp_path, "amz_00000_1.png", points=CONE[:6])
    data, report = load_export(tmp_path, log=quiet)
    assert len(data) == 1
    assert report.counts() == {"wrong point count": 1}
    assert str(report.skipped[0]) == "ann/amz_00000_1.png.json: 6 points, need 7 (skipped)"


def test_missing_image_skipped(tmp_path):
    write_sample(tmp_path, "amz_00000_0.png")
    write_sample(tmp_path, "amz_00000_1.png", image=False)
    _, report = load_export(tmp_path, log=quiet)
    assert report.counts() == {"missing image": 1}


def test_unreadable_image_skipped(tmp_path):
    write_sample(tmp_path, "amz_00000_0.png")
    write_sample(tmp_path, "amz_00000_1.png")
    (tmp_path / "img" / "amz_00000_1.png").write_bytes(b"not a png")
    _, report = load_export(tmp_path, log=quiet)
    assert report.counts() == {"unreadable image": 1}


def test_point_outside_image_skipped(tmp_path):
    write_sample(tmp_path, "amz_00000_0.png")
    write_sample(tmp_path, "amz_00000_1.png", points=CONE[:6] + [[12, 64]])
    _, report = load_export(tmp_path, log=quiet)
    assert report.counts() == {"point outside image": 1}
    assert "(12, 64)" in report.skipped[0].detail


def test_malformed_json_skipped(tmp_path):
    write_sample(tmp_path, "amz_00000_0.png")
    write_sample(tmp_path, "amz_00000_1.png")
    (tmp_path / "ann" / "amz_00000_1.png.json").write_text('{"objects": [')
    _, report = load_export(tmp_path, log=quiet)
    assert report.counts() == {"malformed JSON": 1}


def test_counts_line_logged(tmp_path):
    write_sample(tmp_path, "amz_00000_0.png")
    write_sample(tmp_path, "amz_00000_1.png", points=CONE[:6])
    lines = []
    load_data(tmp_path, log=lines.append)
    assert lines == [f"{tmp_path.name}: 1 loaded, 1 skipped (wrong point count 1)"]


def test_strict_raises_listing_the_files(tmp_path):
    write_sample(tmp_path, "amz_00000_0.png")
    write_sample(tmp_path, "amz_00000_1.png", points=CONE[:6])
    write_sample(tmp_path, "amz_00000_2.png", image=False)
    with pytest.raises(ExportError) as err:
        load_data(tmp_path, strict=True, log=quiet)
    assert "ann/amz_00000_1.png.json: 6 points, need 7" in str(err.value)
    assert "ann/amz_00000_2.png.json: image img/amz_00000_2.png not found" in str(err.value)


def test_other_size_resized_with_keypoints_scaled(tmp_path):
    write_sample(tmp_path, "amz_00000_0.png", points=[[2 * x, 2 * y] for x, y in CONE], size=(96, 128))
    data = load_data(tmp_path, log=quiet)
    assert data.images.shape == (1, 3, 64, 48)
    expected = (torch.tensor(CONE, dtype=torch.float32) * 2 + 0.5) / 2 - 0.5  # pixel centres map onto each other
    torch.testing.assert_close(data.keypoints[0], expected)


def test_images_are_rgb_uint8(tmp_path):
    write_sample(tmp_path, "amz_00000_0.png", color=(0, 0, 255))  # red in cv2's BGR
    data = load_data(tmp_path, log=quiet)
    assert data.images.dtype == torch.uint8
    assert data.images[0, :, 40, 24].tolist() == [255, 0, 0]


def test_bad_quality_tag_kept(tmp_path):
    write_sample(tmp_path, "amz_00000_0.png", tags=["bad quality"])
    write_sample(tmp_path, "amz_00000_1.png")
    data = load_data(tmp_path, log=quiet)
    assert data.bad_quality.tolist() == [True, False]


def test_team_and_frame_from_name():
    assert parse_name("amz_00000_12.png") == ("amz", "amz_00000")
    assert parse_name("cone 7.png") == ("unknown", "cone 7")


def test_names_without_a_cone_index_keep_their_team_each_crop_its_own_frame():
    # cones_more's two styles: <team>_<number>.jpg and <team>_<number>.bmp<k>.jpg
    assert parse_name("eikona_1061.jpg") == ("eikona", "eikona_1061")
    assert parse_name("so_200.bmp0.jpg") == ("so", "so_200.bmp0")
    assert parse_name("so_200.bmp1.jpg") == ("so", "so_200.bmp1")


def test_an_export_named_team_number_loads_as_its_team_without_warning(tmp_path):
    for name in ("eikona_1.jpg", "eikona_2.jpg", "so_7.bmp0.jpg"):
        write_sample(tmp_path, name)
    lines = []
    data = load_data(tmp_path, log=lines.append)
    assert data.teams == ("eikona", "eikona", "so")
    assert len(set(data.frames)) == 3
    assert not any("warning" in line for line in lines)


def test_data_given_twice_joins_the_sources_teams_keeping_their_names(tmp_path):
    write_sample(tmp_path / "a", "amz_00000_0.png")
    write_sample(tmp_path / "a", "tuwr_00001_0.png")
    write_sample(tmp_path / "b", "eikona_5.jpg")
    lines = []
    data = load_data([tmp_path / "a", tmp_path / "b"], log=lines.append)
    assert len(data) == 3 and sorted(data.teams) == ["amz", "eikona", "tuwr"]
    assert sum("loaded" in line for line in lines) == 2  # one counts line per source
    assert load_data([tmp_path / "a"], log=quiet).fingerprint() == load_data(tmp_path / "a", log=quiet).fingerprint()


def test_a_team_in_two_sources_is_refused_with_how_to_rename(tmp_path):
    write_sample(tmp_path / "a", "amz_00000_0.png")
    write_sample(tmp_path / "b", "amz_00007_0.png")
    with pytest.raises(ValueError, match=r"team 'amz' is in both .*a and .*b.*rename one source's files "
                                         r"\(e\.g\. amz2_00012_0\.png"):
        load_data([tmp_path / "a", tmp_path / "b"], log=quiet)


def test_the_same_source_twice_is_refused(tmp_path):
    write_sample(tmp_path / "a", "amz_00000_0.png")
    with pytest.raises(ValueError, match="names one source twice"):
        load_data([tmp_path / "a", tmp_path / "a"], log=quiet)


def test_cache_hit_returns_equal_data(tmp_path):
    write_sample(tmp_path / "export", "amz_00000_0.png", tags=["bad quality"])
    write_sample(tmp_path / "export", "tuwr_00003_1.png", points=CONE[:6])
    first_lines, second_lines = [], []
    first, first_report = load_export(tmp_path / "export", log=first_lines.append)
    second, second_report = load_export(tmp_path / "export", log=second_lines.append)
    assert (first_report.from_cache, second_report.from_cache) == (False, True)
    assert second_lines == first_lines
    assert torch.equal(first.images, second.images) and torch.equal(first.keypoints, second.keypoints)
    assert torch.equal(first.bad_quality, second.bad_quality)
    assert (first.names, first.teams, first.frames) == (second.names, second.teams, second.frames)


def test_cache_kept_outside_project_and_data(tmp_path):
    write_sample(tmp_path / "export", "amz_00000_0.png")
    load_data(tmp_path / "export", log=quiet)
    assert list((tmp_path / "cache").glob("*.npz")) == [cache_path(tmp_path / "export", (48, 64))]


def test_changed_file_rebuilds_cache(tmp_path):
    write_sample(tmp_path / "export", "amz_00000_0.png")
    load_export(tmp_path / "export", log=quiet)
    write_sample(tmp_path / "export", "amz_00000_1.png")
    data, report = load_export(tmp_path / "export", log=quiet)
    assert not report.from_cache and len(data) == 2


def test_fingerprint_follows_content_not_file_times(tmp_path):
    """The benchmarks key their cached runs by it: a fresh copy of the same export (new mtimes, new folder)
    must find them, and any change to a crop or a label must not."""
    for root in ("export", "copy"):
        write_sample(tmp_path / root, "amz_00000_0.png")
        write_sample(tmp_path / root, "tuwr_00003_1.png")
    original = load_data(tmp_path / "export", log=quiet)
    os.utime(tmp_path / "copy" / "ann" / "amz_00000_0.png.json", ns=(1, 1))
    copy = load_data(tmp_path / "copy", log=quiet)
    assert copy.fingerprint() == original.fingerprint()
    moved = copy.__class__(**{**copy.__dict__, "keypoints": copy.keypoints + 0.5})
    assert moved.fingerprint() != original.fingerprint()
    assert original.subset([1, 0]).fingerprint() != original.fingerprint()


def test_corrupt_cache_ignored_and_rebuilt(tmp_path):
    write_sample(tmp_path / "export", "amz_00000_0.png")
    load_export(tmp_path / "export", log=quiet)
    cache_path(tmp_path / "export", (48, 64)).write_bytes(b"PK\x03\x04 truncated")
    lines = []
    data, report = load_export(tmp_path / "export", log=lines.append)
    assert not report.from_cache and len(data) == 1
    assert "unreadable" in lines[0] and "rebuilding" in lines[0]
    assert load_export(tmp_path / "export", log=quiet)[1].from_cache


def test_strict_applies_to_cached_load(tmp_path):
    write_sample(tmp_path, "amz_00000_0.png")
    write_sample(tmp_path, "amz_00000_1.png", points=CONE[:6])
    load_data(tmp_path, log=quiet)
    with pytest.raises(ExportError, match="amz_00000_1.png.json"):
        load_data(tmp_path, strict=True, log=quiet)


def test_missing_folder_names_path_and_layout(tmp_path):
    with pytest.raises(ValueError, match=r"nowhere: no such directory.*ann/<image>\.json"):
        load_data(tmp_path / "nowhere", log=quiet)


def test_folder_without_ann_and_img_is_rejected(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(ValueError, match="is not a Supervisely export"):
        load_data(tmp_path, log=quiet)


def test_project_folder_with_datasets_loads_them_all(tmp_path):
    write_sample(tmp_path / "ds1", "amz_00000_0.png")
    write_sample(tmp_path / "ds2", "tuwr_00001_0.png")
    data = load_data(tmp_path, log=quiet)
    assert data.names == ("ds1/amz_00000_0.png", "ds2/tuwr_00001_0.png")
    assert data.teams == ("amz", "tuwr")


def test_no_folder_gives_synthetic_cones_and_says_so(monkeypatch):
    calls = []

    def make_synthetic(n, seed=0, size=(48, 64)):
        calls.append((n, seed, size))
        return "synthetic set"

    monkeypatch.setitem(sys.modules, "cones.synthetic", types.SimpleNamespace(make_synthetic=make_synthetic))
    lines = []
    assert load_data(None, size=(32, 40), log=lines.append) == "synthetic set"
    assert calls == [(2000, 0, (32, 40))]
    assert len(lines) == 1 and "synthetic" in lines[0] and "--data" in lines[0]
