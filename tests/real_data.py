"""Where the real, shared cone export is: $KEYPOINT_NAS_REAL_DATA, else ../shared/cones_dataset beside
the repository. Missing data fails under CI (env CI set, which guarantees it) and skips loudly elsewhere."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def real_data_dir() -> Path:
    path = Path(os.environ.get("KEYPOINT_NAS_REAL_DATA") or Path(__file__).parents[1] / "../shared/cones_dataset")
    path = path.resolve()
    if not (path / "ann").is_dir():
        message = (f"real cone data not found at {path} (set KEYPOINT_NAS_REAL_DATA to the export folder, "
                   "or put the shared cones_dataset beside the repository)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(f"SKIPPED REAL-DATA TESTS: {message}")
    return path
