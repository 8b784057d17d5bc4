"""runners/retrain.py on a tiny synthetic export for one epoch: the three files, the cap, --reproduce."""
from __future__ import annotations

import json

import pytest
import torch

from cones.synthetic import make_synthetic, save_supervisely
from deploy.exported import initializer_bytes
from runners.retrain import main
from search_space.config import Config
from search_space.registry import create_model
from search_space.size import max_bytes, measure

CFG = Config(family="unet", width=4, depth=2, batch_size=16)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYPOINT_NAS_CACHE", str(tmp_path / "cache"))
    save_supervisely(make_synthetic(32, seed=2), tmp_path / "export")
    return tmp_path / "export"


def write_record(path, cfg: Config = CFG, **search) -> str:
    record = {"config": cfg.to_dict(), "data": {"data": "synthetic", "val_teams": None, "val_fraction": 0.25, "seed": 0},
              "seed": 0, "max_bytes": max_bytes(80), "search": {"epochs": 1, "schedule": "cosine", **search}}
    path.write_text(json.dumps(record))
    return str(path)


def test_writes_model_onnx_and_metrics(data_dir, tmp_path, capsys):
    out = tmp_path / "model"
    config = write_record(tmp_path / "best.json")
    assert main(["--config", config, "--data", str(data_dir), "--out", str(out), "--epochs", "1", "--threads", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["weight_bytes"] == initializer_bytes(out / "model.onnx").weight_bytes == measure(CFG).weight_bytes
    assert metrics["onnx_agrees"] and metrics["onnx_vs_torch_max_px"] <= 1e-3
    assert metrics["data"]["val_crops"] > 0 and metrics["epochs"] == 1
    saved = torch.load(out / "model.pt", weights_only=True)
    assert Config.from_dict(saved["config"]) == CFG
    create_model(CFG).load_state_dict(saved["state_dict"])
    printed = capsys.readouterr().out
    assert "epoch   1/1  val" in printed and "ONNX Runtime vs torch" in printed


def test_oversize_config_is_refused_before_training(tmp_path):
    config = write_record(tmp_path / "big.json", Config(family="resnet", width=16, depth=3))
    with pytest.raises(SystemExit, match="over the cap of 81920 bytes.*not trained"):
        main(["--config", config, "--out", str(tmp_path / "model")])
    assert not (tmp_path / "model").exists()


def test_reproduce_prints_the_searchs_error_beside_the_new_one(data_dir, tmp_path, capsys):
    out = tmp_path / "repro"
    config = write_record(tmp_path / "best.json", val_mean_px=10.0)
    main(["--config", config, "--data", str(data_dir), "--out", str(out), "--reproduce", "--threads", "1"])
    reproduce = json.loads((out / "metrics.json").read_text())["reproduce"]
    assert reproduce["search_val_mean_px"] == 10.0
    assert reproduce["relative_difference"] == pytest.approx(reproduce["val_mean_px"] / 10.0 - 1)
    assert "reproduce: search 10.000 px, retrain" in capsys.readouterr().out


def test_unknown_val_team_is_named(data_dir, tmp_path):
    config = write_record(tmp_path / "best.json")
    with pytest.raises(SystemExit, match="val team 'tuwr' is not in the data; known teams: synthetic"):
        main(["--config", config, "--data", str(data_dir), "--out", str(tmp_path / "m"), "--val-teams", "tuwr"])
