"""Fixtures shared across test folders: small Supervisely exports made by the synthetic generator."""
from pathlib import Path

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
