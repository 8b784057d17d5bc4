"""A study's SQLite file that fills up, turns read-only or stays locked: the search says so in one line (the
storage and what to do), exits 1, keeps every finished trial and leaves no trial RUNNING that the next run does
not retry; rerunning the same command continues the study.

Each fault is SQLite's own error, provoked through ``tests/faults/sqlite_faults.py``."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from studies.reader import finished
from tests.conftest import REPO
from tests.faults.conftest import SCRIPTS, command_env, wait_for

pytestmark = pytest.mark.slow

WRAPPER = Path(__file__).with_name("sqlite_faults.py")
RERUN = "then rerun the same command to continue"


def search_argv(export: Path, db: Path, *extra) -> list[str]:
    return ["--data", str(export), "--storage", f"sqlite:///{db}", "--epochs", "1", "--val-fraction", "0.25",
            "--no-baselines", *map(str, extra)]


def faulty(argv: list[str]) -> list[str]:
    return [sys.executable, str(WRAPPER), str(REPO / SCRIPTS["search"]), *argv]


def message(err: str) -> str:
    """The one thing the command said: stderr's lines but the progress bar's (tqdm redraws one line with \\r)."""
    lines = [line for line in err.splitlines() if line.strip() and "trials [" not in line]
    assert len(lines) == 1, f"expected one line besides the progress bar, got:\n{err}"
    assert "Traceback" not in err
    return lines[0]


def states(db: Path) -> list[tuple[TrialState, str | None]]:
    study = optuna.load_study(study_name="keypoints", storage=f"sqlite:///{db}")
    return [(t.state, t.user_attrs.get("status")) for t in study.trials]


@pytest.fixture()
def two_trials(base_world) -> Path:
    """The robustness tests' study: two finished trials of a search of base_world/export (copy it to write)."""
    return base_world / "study.db"


def run(argv: list[str], tmp_path: Path, **faults: str) -> subprocess.CompletedProcess:
    return subprocess.run(faulty(argv), env=command_env(tmp_path, **faults), capture_output=True, text=True,
                          timeout=600)


def test_a_full_disk_when_the_study_is_created_is_one_line_and_exit_1(base_world, tmp_path):
    db = tmp_path / "new.db"
    done = run(search_argv(base_world / "export", db, "--trials", 2), tmp_path, FAULT_MAX_PAGES="4")
    assert done.returncode == 1
    assert message(done.stderr) == (
        f"search: storage sqlite:///{db} is full (database or disk is full): free space on its disk, or move the "
        f"database and point --storage at it; {RERUN} (finished trials are kept)")


def test_a_disk_that_fills_mid_search_keeps_the_finished_trials_and_fails_the_running_one(two_trials, base_world,
                                                                                          tmp_path):
    db = tmp_path / "copy.db"
    shutil.copy(two_trials, db)
    pages = sqlite3.connect(db).execute("PRAGMA page_count").fetchone()[0]
    done = run(search_argv(base_world / "export", db, "--trials", 4), tmp_path, FAULT_MAX_PAGES=str(pages))
    assert done.returncode == 1
    assert message(done.stderr) == (
        f"search: storage sqlite:///{db} is full (database or disk is full): free space on its disk, or move the "
        f"database and point --storage at it; {RERUN} (finished trials are kept; the running trial is recorded "
        "FAIL and does not count)")
    recorded = [state for state, _ in states(db)]
    assert recorded[:2] == [TrialState.COMPLETE] * 2  # the two finished before this run
    assert recorded[-1] == TrialState.FAIL and TrialState.RUNNING not in recorded
    assert recorded.count(TrialState.FAIL) == 1
    # Space again: the same command continues to --trials.
    again = run(search_argv(base_world / "export", db, "--trials", len(recorded)), tmp_path)
    assert again.returncode == 0 and "Traceback" not in again.stderr
    study = optuna.load_study(study_name="keypoints", storage=f"sqlite:///{db}")
    assert finished(study) == len(recorded) and not study.get_trials(states=(TrialState.RUNNING,))


def test_a_study_locked_past_the_wait_is_one_line_and_exit_1(two_trials, base_world, tmp_path):
    db = tmp_path / "copy.db"
    shutil.copy(two_trials, db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than the search waits
    try:
        done = run(search_argv(base_world / "export", db, "--trials", 3), tmp_path, FAULT_BUSY_MS="300")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 1
    assert message(done.stderr) == (
        f"search: storage sqlite:///{db} stayed locked by another process past SQLite's 60 s wait (database is "
        "locked): stop or finish that process (several searches on one study need PostgreSQL); "
        f"{RERUN} (finished trials are kept)")
    assert states(db) == [(TrialState.COMPLETE, "ok")] * 2


def test_a_study_made_read_only_mid_trial_is_retried_by_the_next_run(two_trials, base_world, tmp_path):
    db = tmp_path / "copy.db"
    shutil.copy(two_trials, db)
    trigger = tmp_path / "read-only-now"
    argv = search_argv(base_world / "export", db, "--trials", 3, "--heartbeat", 1)
    argv[argv.index("--epochs") + 1] = "30"
    process = subprocess.Popen(faulty(argv), env=command_env(tmp_path, FAULT_READ_ONLY_AFTER=str(trigger)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def training():
        running = optuna.load_study(study_name="keypoints", storage=f"sqlite:///{db}").get_trials(
            states=(TrialState.RUNNING,))
        return running if running and running[0].user_attrs.get("history") else None

    lost = wait_for(training, 300, "a trial in training", process)[0].number
    trigger.touch()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert message(err) == (
        f"search: storage sqlite:///{db} cannot be written (attempt to write a readonly database): make the database "
        "file and its folder writable, or copy it somewhere writable and point --storage at the copy; "
        f"{RERUN} (finished trials are kept; the running trial stays RUNNING until the next run retries it)")
    assert [state for state, _ in states(db)] == [TrialState.COMPLETE] * 2 + [TrialState.RUNNING]
    # Writable again: the next run fails the lost trial once its heartbeat is stale, and retries it.
    time.sleep(2.5)
    argv[argv.index("--epochs") + 1] = "1"
    again = run(argv, tmp_path)
    assert again.returncode == 0 and "Traceback" not in again.stderr
    study = optuna.load_study(study_name="keypoints", storage=f"sqlite:///{db}")
    assert study.trials[lost].state == TrialState.FAIL and finished(study) == 3
    assert [t.number for t in study.trials if t.system_attrs.get("failed_trial") == lost]
