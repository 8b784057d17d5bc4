"""Reading COCO keypoints files: crops, full frames, bad input; tiny exports are written to tmp_path by each test."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from benchmarks.write_coco import JSON_NAME, main as write_coco
from cones.coco import DEFAULT_MARGIN, crop_window
from cones.load import load_data, load_export
from cones.synthetic import make_synthetic, save_supervisely
from tests.conftest import REPO

# base-right, mid-right, upper-right, top, upper-left, mid-left, base-left on a 48 x 64 crop
CONE = [[36, 52], [33, 36], [30, 22], [24, 8], [17, 23], [14, 37], [12, 51]]


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYPOINT_NAS_CACHE", str(tmp_path / "cache"))


def quiet(_line):
    pass


def write_coco_file(root, images, annotations, name="coco.json"):
    """A COCO keypoints file at ``root/name``; ``images`` are (file_name, BGR array or None for no file)."""
    entries = []
    for image_id, (file_name, pixels) in enumerate(images, start=1):
        if pixels is not None:
            (root / file_name).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / file_name), pixels)
        height, width = (pixels.shape[:2] if pixels is not None else (64, 48))
        entries.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
    coco = {"images": entries, "annotations": annotations,
            "categories": [{"id": 1, "name": "cone", "keypoints": [str(i) for i in range(7)], "skeleton": []}]}
    path = root / name
    path.write_text(json.dumps(coco))
    return path


def annotation(ann_id, image_id, points, bbox=None, visibility=None, **extra):
    visibility = visibility or [2] * len(points)
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "bbox": bbox,
            "keypoints": [v for (x, y), vis in zip(points, visibility) for v in (x, y, vis)], **extra}


def crop_image(points=CONE, size=(48, 64)):
    canvas = np.full((size[1], size[0], 3), 90, np.uint8)
    cv2.fillPoly(canvas, [np.array(points, np.int32).reshape(-1, 1, 2)], (0, 0, 255))
    return canvas


def test_a_coco_file_written_from_supervisely_loads_the_same_crops(tmp_path):
    export = tmp_path / "export"
    data = make_synthetic(24, seed=5)
    save_supervisely(data, export)
    shuffled = json.loads((export / "ann" / data.names[0]).with_suffix(".png.json").read_text())
    shuffled["objects"] = shuffled["objects"][::-1]  # the JSON order must not matter
    (export / "ann" / f"{data.names[0]}.json").write_text(json.dumps(shuffled))
    bad = json.loads((export / "ann" / f"{data.names[1]}.json").read_text())
    bad["objects"] = bad["objects"][:6]
    (export / "ann" / f"{data.names[1]}.json").write_text(json.dumps(bad))
    assert write_coco(["--data", str(export), "--out", str(tmp_path / "coco")]) == 0

    expected, expected_report = load_export(export, log=quiet)
    got, report = load_export(tmp_path / "coco" / JSON_NAME, log=quiet)
    assert report.counts() == expected_report.counts() == {"wrong point count": 1}
    assert (report.loaded, len(report.skipped)) == (expected_report.loaded, len(expected_report.skipped)) == (23, 1)
    assert torch.equal(got.images, expected.images)
    assert (got.keypoints - expected.keypoints).abs().max() <= 0.5
    assert (got.names, got.teams, got.frames) == (expected.names, expected.teams, expected.frames)
    assert torch.equal(got.bad_quality, expected.bad_quality)


def test_write_coco_refuses_to_write_inside_the_export(tmp_path):
    save_supervisely(make_synthetic(2, seed=1), tmp_path)
    with pytest.raises(SystemExit):
        write_coco(["--data", str(tmp_path), "--out", str(tmp_path / "coco")])
    assert not (tmp_path / "coco").exists()


def test_crop_is_read_as_it_is_and_keypoints_come_out_canonical(tmp_path):
    shuffled = [CONE[i] for i in (3, 6, 0, 4, 1, 5, 2)]
    path = write_coco_file(tmp_path, [("amz_00007_2.png", crop_image())],
                           [annotation(1, 1, shuffled, bbox=[0, 0, 48, 64], attributes={"bad quality": True})])
    data = load_data(path, log=quiet)
    assert data.keypoints[0].tolist() == CONE
    assert (data.names, data.teams, data.frames) == (("amz_00007_2.png",), ("amz",), ("amz_00007",))
    assert data.bad_quality.tolist() == [True]
    assert torch.equal(data.images[0], torch.from_numpy(crop_image()[:, :, ::-1].copy()).permute(2, 0, 1))


def test_larger_crop_is_resized_with_its_keypoints(tmp_path):
    big = [[2 * x, 2 * y] for x, y in CONE]
    path = write_coco_file(tmp_path, [("tuwr_00001_0.png", crop_image(big, (96, 128)))],
                           [annotation(1, 1, big)])  # no box: a crop
    data = load_data(path, log=quiet)
    assert data.size == (48, 64)
    expected = (np.array(big) + 0.5) * 0.5 - 0.5
    assert np.allclose(data.keypoints[0].numpy(), expected)


def test_cvat_layout_finds_images_in_the_images_folder(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "amz_00000_0.png"), crop_image())
    path = write_coco_file(tmp_path / "annotations", [("amz_00000_0.png", None)],
                           [annotation(1, 1, CONE, bbox=[0, 0, 48, 64])], name="person_keypoints_default.json")
    data, report = load_export(path, log=quiet)
    assert len(data) == 1 and report.counts() == {}


def full_frame_with_cones(boxes):
    """A 320 x 240 frame with a cone drawn in each box (x, y, w, h) and its 7 points (frame pixels)."""
    frame = np.full((240, 320, 3), 60, np.uint8)
    cones = []
    for x, y, w, h in boxes:
        points = [[x + px * w / 48, y + py * h / 64] for px, py in CONE]
        cv2.fillPoly(frame, [np.rint(points).astype(np.int32).reshape(-1, 1, 2)], (0, 200, 255))
        cones.append(points)
    return frame, cones


def test_full_frame_is_cut_around_each_box_with_the_margin(tmp_path):
    boxes = [(100, 60, 30, 40), (250, 150, 24, 32)]
    frame, cones = full_frame_with_cones(boxes)
    path = write_coco_file(tmp_path, [("amz_00042.png", frame)],
                           [annotation(i + 1, 1, pts, bbox=list(box)) for i, (pts, box) in enumerate(zip(cones, boxes))])
    data, report = load_export(path, log=quiet)
    assert len(data) == 2 and report.counts() == {}
    assert data.names == ("amz_00042_0.png", "amz_00042_1.png")
    assert data.teams == ("amz", "amz") and data.frames == ("amz_00042", "amz_00042")
    # Box 30 x 40 grown by 0.2 per side: 42 x 56 (already 3:4), centred on the box: (94, 52).
    assert crop_window(list(boxes[0]), (48, 64), DEFAULT_MARGIN) == (94, 52, 42, 56)
    expected = (np.array(cones[0]) - (94, 52) + 0.5) * (48 / 42) - 0.5
    assert np.allclose(data.keypoints[0].numpy(), expected, atol=1e-4)
    # The cone's colour sits under its points in the crop: the mapping and the cut agree.
    image = data.images[0].permute(1, 2, 0).numpy()  # (64, 48, 3) RGB
    inner = np.rint(expected.mean(axis=0)).astype(int)
    assert image[inner[1], inner[0]].tolist() == [255, 200, 0]
    # The cone's box fills 1 / 1.4 of the crop's height with the default margin.
    span = data.keypoints[0, :, 1].max() - data.keypoints[0, :, 1].min()
    assert span == pytest.approx((CONE[0][1] - CONE[3][1]) * 40 / 64 * 64 / 56, abs=0.01)


def test_margin_is_adjustable_and_keys_the_cache(tmp_path):
    frame, cones = full_frame_with_cones([(100, 60, 30, 40)])
    path = write_coco_file(tmp_path, [("amz_00042.png", frame)], [annotation(1, 1, cones[0], bbox=[100, 60, 30, 40])])
    tight, tight_report = load_export(path, log=quiet, margin=0.0)
    loose, loose_report = load_export(path, log=quiet, margin=0.5)
    assert not tight_report.from_cache and not loose_report.from_cache  # another margin is another cache entry
    span = [float(d.keypoints[0, :, 1].max() - d.keypoints[0, :, 1].min()) for d in (tight, loose)]
    assert span[0] == pytest.approx(span[1] * 2, rel=0.02)  # the box fills 64 px at margin 0, 32 px at 0.5
    again, report = load_export(path, log=quiet, margin=0.5)
    assert report.from_cache and torch.equal(again.images, loose.images)


def test_window_beyond_the_frame_is_padded_black(tmp_path):
    frame, cones = full_frame_with_cones([(2, 100, 30, 40)])  # the margin reaches past the left edge
    path = write_coco_file(tmp_path, [("amz_00001.png", frame)], [annotation(1, 1, cones[0], bbox=[2, 100, 30, 40])])
    data = load_data(path, log=quiet)
    assert data.images[0, :, :, 0].sum() == 0  # the first column lies outside the frame


def test_bad_annotations_are_counted_by_reason(tmp_path):
    frame, cones = full_frame_with_cones([(100, 60, 30, 40)])
    images = [("amz_00000_0.png", crop_image()), ("amz_00000_1.png", None), ("amz_00000_2.png", crop_image()),
              ("amz_00009.png", frame)]
    outside = [list(p) for p in CONE]
    outside[0] = [60, 52]
    path = write_coco_file(tmp_path, images, [
        annotation(1, 1, CONE), annotation(2, 1, CONE[:6]), annotation(3, 1, CONE, visibility=[2] * 6 + [0]),
        annotation(4, 1, outside), annotation(5, 2, CONE), annotation(6, 3, CONE), annotation(7, 99, CONE),
        annotation(8, 4, cones[0], bbox=[150, 60, 30, 40]), {"id": 9, "image_id": 1, "keypoints": "x"},
    ])
    (tmp_path / "amz_00000_2.png").write_bytes(b"not a png")
    data, report = load_export(path, log=quiet)
    assert len(data) == 1
    assert report.counts() == {"wrong point count": 1, "malformed JSON": 1, "missing image": 2,
                               "unreadable image": 1, "point outside image": 1, "unlabelled keypoint": 1,
                               "point outside crop": 1}
    text = {s.file: str(s) for s in report.skipped}
    assert text["annotation 3 (amz_00000_0.png)"] == ("annotation 3 (amz_00000_0.png): keypoint 7 of 7 has "
                                                      "visibility 0 (not labelled); label every point (skipped)")
    assert "image amz_00000_1.png not found beside coco.json" in text["annotation 5 (amz_00000_1.png)"]
    assert "raise the margin" in text["annotation 8 (amz_00009.png)"]
    assert report.summary().startswith("coco.json: 1 loaded, 8 skipped (")


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"images": []}', "is not a COCO file (it needs 'images' and 'annotations' lists)"),
    ('{"images": [], "annotations": [{"id": 1, "bbox": [0, 0, 4, 4]}]}', "none of its 1 annotations has keypoints"),
])
def test_bad_coco_file_is_one_line_naming_the_file_and_the_fix(tmp_path, content, message):
    path = tmp_path / "export.json"
    path.write_text(content)
    done = subprocess.run([sys.executable, "runners/inspect_data.py", "--data", str(path)], cwd=REPO,
                          capture_output=True, text=True, env={"KEYPOINT_NAS_CACHE": str(tmp_path / "c"), "PATH": ""})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert str(path) in lines[0] and message in lines[0] and "COCO Keypoints 1.0" in lines[0]


def test_missing_coco_file_and_no_usable_cone_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"nothing\.json: no such file"):
        load_data(tmp_path / "nothing.json", log=quiet)
    path = write_coco_file(tmp_path, [("amz_00000_0.png", crop_image())], [annotation(1, 1, CONE[:5])])
    with pytest.raises(ValueError, match=r"no usable cone in .*coco\.json; first problem: annotation 1"):
        load_data(path, log=quiet)


@pytest.mark.slow
def test_a_short_search_runs_on_a_coco_file(tmp_path, tiny_export):
    import optuna
    from optuna.trial import TrialState

    from runners import search

    assert write_coco(["--data", str(tiny_export), "--out", str(tmp_path / "coco")]) == 0
    coco = tmp_path / "coco" / JSON_NAME
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert search.main(["--data", str(coco), "--storage", url, "--epochs", "1", "--val-fraction", "0.25",
                        "--trials", "2", "--no-baselines"]) == 0
    study = optuna.load_study(study_name="keypoints", storage=url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert study.user_attrs["data"] == str(coco.resolve())
    assert all(t.user_attrs["val_mean_px"] > 0 for t in study.trials)
