"""A kill at any moment leaves the old output or the complete new one, never a half-written file under the final
name. The commands are killed (SIGKILL) at the writer's hook, after the new bytes are written and before they are
renamed into place: the moment a plain ``open(path, "w")`` would have left a truncated file."""
from __future__ import annotations

import json
import signal

import pytest
import torch

from deploy.atomic import PAUSE_ENV, replacing, write_json
from tests.faults.conftest import command_env, start, wait_for
from tests.robustness.conftest import snapshot


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path):
    write_json(tmp_path / "metrics.json", {"old": 1})
    with pytest.raises(RuntimeError):
        with replacing(tmp_path / "metrics.json") as tmp:
            tmp.write_text('{"new": ')
            raise RuntimeError("killed mid-write")
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def _kill_at_rename(process, folder, name: str) -> None:
    stem, dot, suffix = name.partition(".")
    wait_for(lambda: list(folder.glob(f".{stem}.partial-*.{suffix}")), 120, f"{name}'s temporary file", process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_retrain_killed_while_writing_model_onnx_keeps_the_old_model(world, tmp_path):
    before = snapshot(world / "model")
    process = start("retrain", "--config", world / "best.json", "--data", world / "export", "--epochs", "1",
                    "--out", world / "model", "--force", env=command_env(tmp_path, **{PAUSE_ENV: "model.onnx"}))
    _kill_at_rename(process, world / "model", "model.onnx")
    after = snapshot(world / "model")
    # model.pt was renamed into place, whole, before model.onnx was written; the rest is the old run's.
    assert after["model.onnx"] == before["model.onnx"] and after["metrics.json"] == before["metrics.json"]
    assert after["model.pt"] != before["model.pt"]
    assert "state_dict" in torch.load(world / "model" / "model.pt", weights_only=False)
    assert {name for name in after if not name.startswith(".")} == set(before)


@pytest.mark.slow
def test_retrain_killed_while_writing_its_first_output_leaves_no_model(world, tmp_path):
    out = tmp_path / "new_model"
    process = start("retrain", "--config", world / "best.json", "--data", world / "export", "--epochs", "1",
                    "--out", out, env=command_env(tmp_path, **{PAUSE_ENV: "model.pt"}))
    _kill_at_rename(process, out, "model.pt")
    assert not [p for p in out.iterdir() if not p.name.startswith(".")]


def test_export_killed_while_writing_keeps_the_old_file(world, tmp_path):
    old = (world / "best.json").read_bytes()
    process = start("export", "--storage", f"sqlite:///{world / 'study.db'}", "--out", world / "best.json", "--force",
                    env=command_env(tmp_path, **{PAUSE_ENV: "best.json"}))
    _kill_at_rename(process, world, "best.json")
    assert (world / "best.json").read_bytes() == old


def test_export_killed_while_writing_a_new_file_leaves_none(world, tmp_path):
    process = start("export", "--storage", f"sqlite:///{world / 'study.db'}", "--out", world / "new.json",
                    env=command_env(tmp_path, **{PAUSE_ENV: "new.json"}))
    _kill_at_rename(process, world, "new.json")
    assert not (world / "new.json").exists()


@pytest.mark.slow
def test_adapt_killed_while_writing_model_onnx_leaves_no_half_model(world, tmp_path):
    out = tmp_path / "adapted"
    process = start("adapt", "--model", world / "model", "--data", world / "export", "--out", out, "--steps", "20",
                    "--threads", "1", env=command_env(tmp_path, **{PAUSE_ENV: "model.onnx"}))
    _kill_at_rename(process, out, "model.onnx")
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["model.pt"]
    assert "state_dict" in torch.load(out / "model.pt", weights_only=False)  # renamed into place whole
