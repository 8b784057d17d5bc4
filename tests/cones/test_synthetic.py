"""cones.synthetic: deterministic crops with keypoints in canonical order, and Supervisely fixture exports."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from cones.synthetic import make_synthetic, save_supervisely


@pytest.fixture(scope="module")
def cones():
    return make_synthetic(200, seed=7)


def test_same_seed_same_crops_other_seed_differs():
    first, second, other = make_synthetic(8, seed=3), make_synthetic(8, seed=3), make_synthetic(8, seed=4)
    assert torch.equal(first.images, second.images) and torch.equal(first.keypoints, second.keypoints)
    assert not torch.equal(first.images, other.images)
    assert not torch.equal(first.keypoints, other.keypoints)


def test_fewer_crops_are_a_prefix_of_more():
    few, many = make_synthetic(5, seed=1), make_synthetic(12, seed=1)
    assert torch.equal(few.images, many.images[:5]) and torch.equal(few.keypoints, many.keypoints[:5])


def test_fields_types_and_names(cones):
    assert cones.images.shape == (200, 3, 64, 48) and cones.images.dtype == torch.uint8
    assert cones.keypoints.shape == (200, 7, 2) and cones.keypoints.dtype == torch.float32
    assert not cones.bad_quality.any()
    assert cones.names[13] == "synthetic_00003_1.png" and cones.frames[13] == "synthetic_00003"
    assert set(cones.teams) == {"synthetic"}
    assert len(set(cones.frames)) == 50  # 4 cones per frame


def test_keypoints_inside_the_image(cones):
    x, y = cones.keypoints[..., 0], cones.keypoints[..., 1]
    assert x.min() >= 0 and x.max() <= 47 and y.min() >= 0 and y.max() <= 63


def test_keypoints_in_canonical_geometric_order(cones):
    k = cones.keypoints
    top_y = k[:, 3, 1]
    assert (top_y[:, None] < k[:, [0, 1, 2, 4, 5, 6], 1]).all()  # the top has the smallest y
    assert (k[:, [0, 1, 2], 0] > k[:, [6, 5, 4], 0]).all()  # right flank right of the left flank, level by level
    for flank in ([0, 1, 2], [6, 5, 4]):  # each flank runs from the base upwards
        assert (k[:, flank[0], 1] > k[:, flank[1], 1]).all() and (k[:, flank[1], 1] > k[:, flank[2], 1]).all()


def test_cone_sizes_vary_around_the_real_framing(cones):
    height = cones.keypoints[:, [0, 6], 1].mean(dim=1) - cones.keypoints[:, 3, 1]
    assert height.min() < 34 and height.max() > 50  # real crops: 44-48 px on average, new teams differ
    assert 40 < height.median() < 50


def test_the_cone_is_drawn_at_its_keypoints():
    # Between the mid points the cone is a band of its body colour; it differs from the ground beside it.
    data = make_synthetic(40, seed=2)
    differs = 0
    for image, k in zip(data.images.float(), data.keypoints):
        y = int(round(float(k[1, 1] + k[5, 1]) / 2)) + 2  # just below the stripe, on the body
        inside = image[:, y, int(k[5, 0]) + 2:int(k[1, 0]) - 1].mean(dim=1)
        outside = torch.cat([image[:, y, :max(1, int(k[5, 0]) - 3)], image[:, y, int(k[1, 0]) + 4:]], dim=1)
        differs += bool((inside - outside.mean(dim=1)).abs().max() > 20)
    assert differs >= 36


def test_other_sizes():
    data = make_synthetic(4, seed=0, size=(64, 64))
    assert data.images.shape == (4, 3, 64, 64) and data.size == (64, 64)
    assert data.keypoints.min() >= 0 and data.keypoints.max() <= 63


def test_save_supervisely_writes_parsable_export(tmp_path):
    data = make_synthetic(3, seed=0)
    data = type(data)(images=data.images, keypoints=data.keypoints, bad_quality=torch.tensor([False, True, False]),
                      names=data.names, teams=data.teams, frames=data.frames)
    save_supervisely(data, tmp_path)
    for i, name in enumerate(data.names):
        ann = json.loads((tmp_path / "ann" / f"{name}.json").read_text())
        assert ann["size"] == {"height": 64, "width": 48}
        assert len(ann["objects"]) == 7
        points = np.array([o["points"]["exterior"][0] for o in ann["objects"]])
        assert all(o["geometryType"] == "point" and o["classTitle"] == "Top" for o in ann["objects"])
        assert np.array_equal(points, np.rint(data.keypoints[i].numpy()))
        assert [t["name"] for t in ann["tags"]] == (["bad quality"] if i == 1 else [])
        image = cv2.imread(str(tmp_path / "img" / name))[:, :, ::-1]  # BGR -> RGB
        assert np.array_equal(image, data.images[i].permute(1, 2, 0).numpy())


def test_save_supervisely_round_trips_through_the_reader(tmp_path):
    supervisely = pytest.importorskip("cones.supervisely")
    data = make_synthetic(8, seed=5)
    save_supervisely(data, tmp_path)
    loaded, report = supervisely.read_export(tmp_path)
    assert report.loaded == 8 and not report.skipped
    order = [loaded.names.index(name) for name in data.names]
    assert torch.equal(loaded.images[order], data.images)
    assert torch.equal(loaded.keypoints[order], data.keypoints.round())
    assert [loaded.frames[i] for i in order] == list(data.frames)
