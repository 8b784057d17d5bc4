"""Fixtures shared across test folders: small Supervisely exports made by the synthetic generator, and a small
world of real artefacts (a Supervisely export, a study, an exported config, a shipped model, crops) built once and
copied for every case of tests/robustness and tests/faults that must check nothing in it changed."""
import os
import shutil
from pathlib import Path

import cv2
import pytest

from cones.synthetic import make_synthetic, save_supervisely

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> Path:
    """48 synthetic crops (12 frames) written as a Supervisely export."""
    root = tmp_path_factory.mktemp("tiny_export")
    save_supervisely(make_synthetic(48, seed=3), root)
    return root


@pytest.fixture()
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Keep the decoded-data cache of a test out of the user's cache folder."""
    monkeypatch.setenv("KEYPOINT_NAS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def teams_exports(tmp_path_factory) -> tuple[Path, Path]:
    """Two Supervisely exports of synthetic crops with invented teams: ka and kb (24 crops each) in the first,
    kc (24 crops) in the second, as ``--data A --data B`` reads them."""
    from cones.synthetic import with_teams

    first, second = tmp_path_factory.mktemp("teams_a"), tmp_path_factory.mktemp("teams_b")
    save_supervisely(with_teams(make_synthetic(48, seed=5), ["ka", "kb"]), first)
    save_supervisely(with_teams(make_synthetic(24, seed=6), ["kc"]), second)
    return first, second


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
