"""runners/adapt.py: the three files with retrain's contract and size, and the guard rails (too few crops, the
shipped model never written over, the shipped weights kept when adapting does not help)."""
from __future__ import annotations

import functools
import json

import pytest
import torch

from cones.synthetic import make_synthetic, save_supervisely
from deploy.exported import ExportedModel, initializer_bytes
from runners import adapt
from runners.retrain import main as retrain
from search_space.cap import max_bytes
from search_space.config import Config
from search_space.size import measure
from shipping.adapt import AdaptSettings

CFG = Config(family="unet", width=4, depth=2, batch_norm=True, head="softmax", loss="ce", batch_size=16, lr=3e-3)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapt")
    mp = pytest.MonkeyPatch()
    mp.setenv("KEYPOINT_NAS_CACHE", str(root / "cache"))
    save_supervisely(make_synthetic(40, seed=2), root / "shared")
    save_supervisely(make_synthetic(24, seed=7), root / "ours")
    (root / "best.json").write_text(json.dumps({"config": CFG.to_dict(), "max_bytes": max_bytes(80)}))
    retrain(["--config", str(root / "best.json"), "--data", str(root / "shared"), "--out", str(root / "model"),
             "--epochs", "1", "--threads", "1"])
    yield root
    mp.undo()


def test_writes_the_three_files_with_the_shipped_contract_and_size(shipped, capsys):
    out = shipped / "adapted"
    assert adapt.main(["--model", str(shipped / "model"), "--data", str(shipped / "ours"), "--out", str(out),
                       "--steps", "20", "--threads", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["weight_bytes"] == initializer_bytes(out / "model.onnx").weight_bytes == measure(CFG).weight_bytes
    assert metrics["onnx_agrees"] and metrics["crops"] == sum(fold["crops"] for fold in metrics["folds"]) == 24
    assert metrics["shared"] == str(shipped / "shared")  # retrain recorded it; mixed in without --shared
    assert metrics["crossval_after"]["mean_px"] <= metrics["crossval_before"]["mean_px"]
    shipped_onnx, adapted_onnx = ExportedModel(shipped / "model" / "model.onnx"), ExportedModel(out / "model.onnx")
    assert adapted_onnx.input_size == shipped_onnx.input_size and adapted_onnx.metadata["inference"] == \
        shipped_onnx.metadata["inference"]
    saved = torch.load(out / "model.pt", weights_only=True)
    assert Config.from_dict(saved["config"]) == CFG
    assert "cross-validated" in capsys.readouterr().out


def test_refuses_fewer_than_five_crops(shipped, tmp_path):
    save_supervisely(make_synthetic(4, seed=3), tmp_path / "few")
    with pytest.raises(SystemExit, match="4 usable labelled crops; adapting needs at least 5"):
        adapt.main(["--model", str(shipped / "model"), "--data", str(tmp_path / "few"), "--out", str(tmp_path / "a")])
    assert not (tmp_path / "a").exists()


def test_never_writes_over_the_shipped_model_or_an_existing_folder(shipped, tmp_path):
    before = (shipped / "model" / "model.pt").read_bytes()
    with pytest.raises(SystemExit, match="is or lies inside the input"):
        adapt.main(["--model", str(shipped / "model"), "--data", str(shipped / "ours"), "--out", str(shipped / "model")])
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="already exists and is not empty"):
        adapt.main(["--model", str(shipped / "model"), "--data", str(shipped / "ours"), "--out", str(tmp_path / "taken")])
    assert (shipped / "model" / "model.pt").read_bytes() == before
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_keeps_the_shipped_weights_and_says_so_when_adapting_hurts(shipped, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(adapt, "AdaptSettings", functools.partial(AdaptSettings, lr_scale=1e30))
    out = tmp_path / "kept"
    adapt.main(["--model", str(shipped / "model"), "--data", str(shipped / "ours"), "--out", str(out),
                "--steps", "40", "--threads", "1"])
    assert "keeping the shipped weights" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kept_shipped_weights"] and metrics["crossval_after"] == metrics["crossval_before"]
    shipped_state = torch.load(shipped / "model" / "model.pt", weights_only=True)["state_dict"]
    adapted_state = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(adapted_state[k], v) for k, v in shipped_state.items())


def test_a_model_folder_without_model_pt_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="no model.pt there"):
        adapt.main(["--model", str(tmp_path), "--data", str(tmp_path), "--out", str(tmp_path / "a")])
