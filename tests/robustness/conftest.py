"""A small world of real artefacts (a Supervisely export, a study, an exported config, a shipped model, crops)
built once, copied for every bad-input case so that each case can check nothing in it changed."""
from __future__ import annotations

import hashlib
import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest

from cones.synthetic import make_synthetic, save_supervisely
from runners.cli import run

COMMANDS = {"search": "runners.search", "export": "runners.export", "retrain": "runners.retrain",
            "predict": "runners.predict", "adapt": "runners.adapt", "inspect_data": "runners.inspect_data",
            "report": "analysis.report", "inference": "benchmarks.inference"}


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def message(self) -> str:
        """The last line the command printed to stderr: what the user reads."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def invoke(command: str, argv: list[str], capsys) -> Outcome:
    """Run a command as ``python COMMAND.py ARGS`` would: through ``runners.cli.run``; a SystemExit with a
    message prints it and exits 1, as the interpreter does. Any other exception propagates: a traceback."""
    module = importlib.import_module(COMMANDS[command])
    capsys.readouterr()
    try:
        code = run(lambda: module.main(argv), command)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=__import__("sys").stderr)
            code = 1
        else:
            code = stop.code or 0
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root``: its relative path and a hash of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def base_world(tmp_path_factory) -> Path:
    """export/ (24 synthetic crops, Supervisely), study.db (a 2-trial search), best.json (its export),
    model/ (a 1-epoch retrain), crops/ (3 PNGs), notes.txt."""
    from runners import export, retrain, search

    root = tmp_path_factory.mktemp("world")
    previous = os.environ.get("KEYPOINT_NAS_CACHE")
    os.environ["KEYPOINT_NAS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        save_supervisely(make_synthetic(24, seed=5), root / "export")
        storage = f"sqlite:///{root / 'study.db'}"
        assert search.main(["--data", str(root / "export"), "--storage", storage, "--trials", "2", "--epochs", "1",
                            "--no-baselines", "--val-fraction", "0.25"]) == 0
        assert export.main(["--storage", storage, "--out", str(root / "best.json")]) == 0
        assert retrain.main(["--config", str(root / "best.json"), "--data", str(root / "export"), "--epochs", "1",
                             "--out", str(root / "model")]) == 0
    finally:
        if previous is None:
            os.environ.pop("KEYPOINT_NAS_CACHE")
        else:
            os.environ["KEYPOINT_NAS_CACHE"] = previous
    (root / "crops").mkdir()
    for i, image in enumerate(make_synthetic(3, seed=6).images):
        cv2.imwrite(str(root / "crops" / f"amz_0000{i}_0.png"), image.permute(1, 2, 0).numpy()[..., ::-1])
    (root / "notes.txt").write_text("not a model, not a database, not a crop\n")
    return root


@pytest.fixture
def world(base_world, tmp_path, monkeypatch) -> Path:
    """A private copy of the world; the current folder is inside it (default paths land there)."""
    root = tmp_path / "w"
    shutil.copytree(base_world, root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("KEYPOINT_NAS_CACHE", str(tmp_path / "cache"))
    return root
