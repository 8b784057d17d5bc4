"""runners/predict.py: JSON, CSV and drawings for crops of the model's size and of other sizes."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from cones.synthetic import make_synthetic
from deploy.onnx_export import export_untrained
from runners.predict import main
from search_space.config import Config


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    export_untrained(Config(family="unet", width=4, depth=2), path)
    return path


@pytest.fixture
def crops(tmp_path):
    """crops/a.png at 48 x 64 and big/b.png, the same crop at 96 x 128 (each pixel doubled)."""
    image = make_synthetic(1, seed=1).images[0].permute(1, 2, 0).numpy()[..., ::-1]  # (64, 48, 3) BGR
    (tmp_path / "crops").mkdir()
    (tmp_path / "big").mkdir()
    cv2.imwrite(str(tmp_path / "crops" / "a.png"), image)
    cv2.imwrite(str(tmp_path / "big" / "b.png"), cv2.resize(image, (96, 128), interpolation=cv2.INTER_NEAREST))
    return tmp_path


def test_writes_json_csv_and_drawings_inside_the_image(model_path, crops, tmp_path):
    out = tmp_path / "out"
    assert main(["--model", str(model_path), str(crops / "crops"), str(crops / "big" / "b.png"), "--out", str(out)]) == 0
    records = json.loads((out / "keypoints.json").read_text())["images"]
    assert [(r["width"], r["height"]) for r in records] == [(48, 64), (96, 128)]
    for record in records:
        points = np.array(list(record["keypoints"].values()))  # (7, 2)
        assert points.shape == (7, 2)
        assert (points >= -0.5).all() and (points[:, 0] <= record["width"] - 0.5).all()
        assert (points[:, 1] <= record["height"] - 0.5).all()
        drawing = cv2.imread(record["drawing"])
        assert drawing is not None and drawing.shape[0] > 6 * 64  # enlarged, legend below
    rows = list(csv.DictReader(open(out / "keypoints.csv")))
    assert len(rows) == 14 and set(rows[0]) == {"file", "keypoint", "x", "y"}
    assert rows[3]["keypoint"] == "top"


def test_keypoints_of_a_larger_image_map_back_to_its_pixels(model_path, crops, tmp_path):
    main(["--model", str(model_path), str(crops / "crops" / "a.png"), str(crops / "big" / "b.png"),
          "--out", str(tmp_path / "out")])
    small, big = (np.array(list(r["keypoints"].values()))
                  for r in json.loads((tmp_path / "out" / "keypoints.json").read_text())["images"])
    # b.png shrinks back to exactly a.png, so its keypoints are a.png's in a twice finer pixel grid.
    np.testing.assert_allclose(big, (small + 0.5) * 2 - 0.5, atol=2e-3)


def test_missing_input_is_named(model_path, tmp_path):
    with pytest.raises(SystemExit, match="nope.png: no such file"):
        main(["--model", str(model_path), str(tmp_path / "nope.png"), "--out", str(tmp_path / "out")])


def test_predict_does_not_import_torch():
    code = "import sys, runners.predict; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
