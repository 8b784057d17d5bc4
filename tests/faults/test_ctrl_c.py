"""Ctrl-C at any moment is one line and exit 130: here while a command is still importing torch, Optuna or Ray
(seconds after it starts), where Python used to print a traceback from inside an import."""
from __future__ import annotations

import signal
import time

import pytest

from tests.faults.conftest import command_env, one_line, start

SENT_AFTER = 0.6  # seconds: past Python's own start (0.05-0.2 s), well before the imports end (1.5 s or more)


@pytest.mark.parametrize("command, argv", [
    ("search", ["--trials", "1"]),
    ("retrain", ["--config", "best.json"]),
    ("export", ["--out", "best.json"]),
    ("report", []),
])
def test_ctrl_c_while_importing_is_one_line_and_exit_130(command, argv, tmp_path):
    process = start(command, *argv, env=command_env(tmp_path), cwd=tmp_path)
    time.sleep(SENT_AFTER)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err
    assert one_line(err) == f"{command}: interrupted while starting; nothing was written"
    assert list(tmp_path.iterdir()) == []  # no study, no output: nothing had started
