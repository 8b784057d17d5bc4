"""predict and adapt without --model find the packaged model (models/default/) from any working directory, as a
team on a fresh clone runs them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from cones.synthetic import make_synthetic, save_supervisely, with_teams

REPO = Path(__file__).resolve().parents[2]
PACKAGED = REPO / "models" / "default"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "KEYPOINT_NAS_CACHE": str(cwd / "cache")}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_predict_without_model_runs_the_packaged_one_from_another_folder(tmp_path):
    (tmp_path / "crops").mkdir()
    for i, image in enumerate(make_synthetic(3, seed=2).images):
        cv2.imwrite(str(tmp_path / "crops" / f"c{i}.png"), image.permute(1, 2, 0).numpy()[..., ::-1])
    done = _run([str(REPO / "runners" / "predict.py"), "crops", "--out", "out"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"using the packaged model {PACKAGED / 'model.onnx'}" in done.stdout
    document = json.loads((tmp_path / "out" / "keypoints.json").read_text())
    assert document["model"] == str(PACKAGED / "model.onnx") and len(document["images"]) == 3


@pytest.mark.slow
def test_adapt_without_model_or_shared_data_adapts_the_packaged_one_from_another_folder(tmp_path):
    save_supervisely(with_teams(make_synthetic(12, seed=4), ["kz"]), tmp_path / "ours")
    done = _run([str(REPO / "runners" / "adapt.py"), "--data", "ours", "--out", "adapted", "--guard", "replay",
                 "--steps", "3", "--folds", "2", "--threads", "1"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"using the packaged model {PACKAGED}" in done.stdout
    metrics = json.loads((tmp_path / "adapted" / "metrics.json").read_text())
    shipped = json.loads((PACKAGED / "metrics.json").read_text())
    assert metrics["guard"] == "replay" and metrics["shared"] == str(PACKAGED / "replay.npz")
    assert metrics["onnx_agrees"] and metrics["weight_bytes"] == shipped["weight_bytes"] <= shipped["max_bytes"]
