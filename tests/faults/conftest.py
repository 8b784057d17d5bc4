"""What the fault tests share: a way to run a command as a user does, in its own process, and to wait for it.
(The small world of an export, a 2-trial study, best.json and a retrained model is tests/conftest.py's.)"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPTS = {"search": "runners/search.py", "export": "runners/export.py", "retrain": "runners/retrain.py",
           "predict": "runners/predict.py", "adapt": "runners/adapt.py", "inspect_data": "runners/inspect_data.py",
           "ablate": "runners/ablate.py", "report": "analysis/report.py"}


def command_line(command: str, *argv: str) -> list[str]:
    return [sys.executable, str(REPO / SCRIPTS[command]), *map(str, argv)]


def command_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test's environment (its PYTHONPATH reaches the code under test), a private data cache."""
    return {**os.environ, "KEYPOINT_NAS_CACHE": str(tmp_path / "cache"), **extra}


def start(command: str, *argv: str, env: dict, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(command_line(command, *argv), env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, seconds: float, what: str, process: subprocess.Popen | None = None):
    """Poll ``condition`` until it returns something true; fail (killing ``process``) after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the command ended (exit {process.returncode}) before {what}:\n{err[-3000:]}")
        time.sleep(0.05)
    if process is not None:
        process.kill()
        process.communicate()
    pytest.fail(f"gave up after {seconds} s waiting for {what}")


def one_line(err: str) -> str:
    """The stderr of a command that must say one thing: its non-empty lines, checked to be exactly one."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    return lines[0]
