"""A non-editable ``pip install .`` carries the packaged model: the wheel holds models/default, and the installed
``deploy.packaged`` finds it there, not in the checkout it was built from."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

PACKAGES = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
SOURCES = ["pyproject.toml", "README.md", *sorted({name.split(".")[0] for name in PACKAGES})]
PACKAGED = ["model.onnx", "model.pt", "metrics.json", "replay.npz", "heldout.json", "MODEL.md"]


def test_a_wheel_installs_the_packaged_model_beside_deploy(tmp_path):
    source = tmp_path / "src"  # a copy: building in the checkout would leave build/ and egg-info there
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                            if (REPO / name).is_dir() else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("*.whl"))
    assert {f"models/default/{name}" for name in PACKAGED} <= set(zipfile.ZipFile(wheel).namelist())

    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)  # what pip puts in site-packages
    # -S: no site-packages, so the checkout's editable install cannot answer the import
    found = subprocess.run([sys.executable, "-S", "-c", "from deploy.packaged import packaged_dir; print(packaged_dir())"],
                           cwd=tmp_path, env={"PYTHONPATH": str(target)}, check=True, capture_output=True, text=True)
    assert Path(found.stdout.strip()) == target / "models" / "default"
