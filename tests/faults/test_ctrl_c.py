"""Ctrl-C at any moment is one line and exit 130: here while a command is still importing torch, Optuna or Ray
(seconds after it starts), where Python used to print a traceback from inside an import."""
from __future__ import annotations

import signal

import pytest

from cli.exits import STARTED_FILE_ENV
from tests.faults.conftest import command_env, one_line, start, wait_for


@pytest.mark.parametrize("command, argv", [
    ("search", ["--trials", "1"]),
    ("retrain", ["--config", "best.json"]),
    ("export", ["--out", "best.json"]),
    ("report", []),
])
def test_ctrl_c_while_importing_is_one_line_and_exit_130(command, argv, tmp_path):
    work, started = tmp_path / "work", tmp_path / "started"
    work.mkdir()
    process = start(command, *argv, env=command_env(tmp_path, **{STARTED_FILE_ENV: str(started)}), cwd=work)
    # The command says when its handler is in; torch, Optuna or Ray take a second or more to import after that.
    wait_for(started.exists, 60, "the command to start", process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err
    assert one_line(err) == f"{command}: interrupted while starting; nothing was written"
    assert list(work.iterdir()) == []  # no study, no output: nothing had started
