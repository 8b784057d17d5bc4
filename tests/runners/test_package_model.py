"""runners/package_model.py and what adapt does with a packaged model: the folder's files and card, adapting with
the shared data on the machine and, where it is not, with the packaged replay set alone; an int8 model adapted
quantization-aware under its int8 cap; the packaged model found without --model."""
from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from cones.synthetic import make_synthetic, save_supervisely, with_teams
from deploy import packaged
from deploy.exported import ExportedModel, initializer_bytes
from runners import adapt
from runners.package_model import main as package
from runners.retrain import main as retrain
from search_space.cap import max_bytes
from search_space.config import BYTES_PER_KB, Config
from search_space.size import measure

CFG = Config(family="unet", width=4, depth=2, batch_norm=True, head="softmax", loss="ce", batch_size=16, lr=3e-3)
FAST = ["--steps", "8", "--folds", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory, teams_exports):
    """A one-epoch ship-mode retrain on three synthetic teams (ka, kb, kc), packaged with a 12-crop replay set,
    and a team's own crops (kd)."""
    root = tmp_path_factory.mktemp("package")
    mp = pytest.MonkeyPatch()
    mp.setenv("KEYPOINT_NAS_CACHE", str(root / "cache"))
    first, second = teams_exports
    (root / "best.json").write_text(json.dumps({"config": CFG.to_dict(), "max_bytes": max_bytes(80)}))
    retrain(["--config", str(root / "best.json"), "--data", str(first), "--data", str(second), "--out",
             str(root / "trained"), "--epochs", "1", "--threads", "1"])
    package(["--model", str(root / "trained"), "--data", str(first), "--data", str(second), "--out",
             str(root / "packaged"), "--replay-crops", "12"])
    save_supervisely(with_teams(make_synthetic(16, seed=9), ["kd"]), root / "ours")
    yield root
    mp.undo()


def _without_shared_data(shipped, tmp_path):
    """The packaged folder as on a fresh clone: metrics.json names shared data this machine does not have."""
    folder = tmp_path / "clone" / "default"
    shutil.copytree(shipped / "packaged", folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["data"]["data"] = [str(tmp_path / "gone" / "cones_dataset"), str(tmp_path / "gone" / "cones_more")]
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_packages_the_model_its_team_counts_replay_set_and_card(shipped):
    folder = shipped / "packaged"
    assert {p.name for p in folder.iterdir()} == {"model.onnx", "model.pt", "metrics.json", "replay.npz", "MODEL.md"}
    assert (folder / "model.onnx").read_bytes() == (shipped / "trained" / "model.onnx").read_bytes()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["data"]["team_crops"] == {"ka": 24, "kb": 24, "kc": 24}
    from cones.replay import load_replay
    assert Counter(load_replay(folder / "replay.npz").teams) == {"ka": 4, "kb": 4, "kc": 4}
    card = (folder / "MODEL.md").read_text()
    assert card == packaged.model_card(metrics, None, {"ka": 4, "kb": 4, "kc": 4})
    assert "U-Net w4 d2" in card and "ka 24, kb 24, kc 24" in card and "package_model.py" in card


def test_refuses_data_the_model_was_not_trained_on(shipped, teams_exports, tmp_path):
    with pytest.raises(SystemExit, match="has 48 crops, and the model trained on 72"):
        package(["--model", str(shipped / "trained"), "--data", str(teams_exports[0]), "--out", str(tmp_path / "p")])
    assert not (tmp_path / "p").exists()


def test_adapt_mixes_in_the_shared_data_when_it_is_on_the_machine(shipped, tmp_path, capsys):
    out = tmp_path / "adapted"
    assert adapt.main(["--model", str(shipped / "packaged"), "--data", str(shipped / "ours"), "--out", str(out),
                       *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["guard"] == "shared" and len(metrics["shared"]) == 2
    assert "72 shared crops mixed in" in capsys.readouterr().out


def test_adapt_without_the_shared_data_mixes_in_the_replay_set_and_keeps_contract_and_cap(shipped, tmp_path, capsys):
    folder, out = _without_shared_data(shipped, tmp_path), tmp_path / "adapted"
    assert adapt.main(["--model", str(folder), "--data", str(shipped / "ours"), "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "not on this machine: mixing in its replay set" in printed and "12 shared crops mixed in" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["guard"] == "replay" and metrics["shared"] == str(folder / "replay.npz")
    assert metrics["onnx_agrees"] and "crossval_after" in metrics and len(metrics["folds"]) == 2
    assert initializer_bytes(out / "model.onnx").weight_bytes == measure(CFG).weight_bytes <= metrics["max_bytes"]
    assert ExportedModel(out / "model.onnx").input_size == ExportedModel(folder / "model.onnx").input_size


def test_adapt_can_be_told_to_use_l2_sp_instead(shipped, tmp_path):
    out = tmp_path / "adapted"
    adapt.main(["--model", str(shipped / "packaged"), "--data", str(shipped / "ours"), "--out", str(out),
                "--guard", "penalty", *FAST])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["guard"] == "penalty" and metrics["shared"] is None and metrics["settings"]["penalty"] == 0.1


def test_adapt_without_model_uses_the_packaged_one_and_says_so(shipped, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(packaged, "PACKAGED_DIR", shipped / "packaged")
    out = tmp_path / "adapted"
    assert adapt.main(["--data", str(shipped / "ours"), "--out", str(out), *FAST]) == 0
    assert f"using the packaged model {shipped / 'packaged'}" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["shipped_model"] == str(shipped / "packaged")


def test_an_int8_model_adapts_quantization_aware_and_stays_int8_under_its_cap(shipped, teams_exports, tmp_path):
    int8_bytes, float_bytes = measure(CFG, weights="int8").weight_bytes, measure(CFG).weight_bytes
    cap_kb = (int8_bytes + 64) / BYTES_PER_KB  # the float32 model would not fit: the cap must count int8 bytes
    assert float_bytes > cap_kb * BYTES_PER_KB
    retrain(["--config", str(shipped / "best.json"), "--data", str(teams_exports[0]), "--out", str(tmp_path / "m8"),
             "--epochs", "1", "--weights", "int8", "--qat-epochs", "1", "--max-kb", str(cap_kb), "--threads", "1"])
    out = tmp_path / "adapted8"
    assert adapt.main(["--model", str(tmp_path / "m8"), "--data", str(shipped / "ours"), "--out", str(out),
                       "--shared", str(teams_exports[1]), *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["weights"] == "int8" and metrics["weight_bytes"] == int8_bytes <= metrics["max_bytes"]
    assert metrics["onnx_agrees"]
    exported = ExportedModel(out / "model.onnx")
    assert exported.metadata["weights"] == "int8" and initializer_bytes(out / "model.onnx").weight_bytes == int8_bytes
    import torch
    saved = torch.load(out / "model.pt", weights_only=True)
    assert saved["weights"] == "int8" and "int8_state_dict" in saved
    # the adapted int8 model adapts again
    assert adapt.main(["--model", str(out), "--data", str(shipped / "ours"), "--out", str(tmp_path / "again"),
                       "--guard", "penalty", *FAST]) == 0
