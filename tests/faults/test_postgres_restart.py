"""A PostgreSQL server stopped and started again in the middle of a trial costs no trial: the search waits for it
(up to ``search_engine.storage.RETRY_SECONDS``, with backoff) and finishes as if nothing happened; one that stays
away ends the search with one line and exit code 1.

The server is always the test's own (``pgserver``, as in tests/runners/test_postgres.py): a server named by
KEYPOINT_NAS_PG_URL is not the test's to stop."""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from search_engine.storage import safe_url
from studies.reader import finished
from tests.faults.conftest import command_env, start, wait_for

pytestmark = pytest.mark.slow

DOWN_SECONDS = 5


@pytest.fixture()
def server():
    with warnings.catch_warnings():  # platformdirs warns that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver

    pgdata = tempfile.mkdtemp(prefix="keypoint-nas-pg-")
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


class StderrReader(threading.Thread):
    """Collects a running process's stderr as it comes (tqdm redraws without newlines, so not line by line)."""

    def __init__(self, process):
        super().__init__(daemon=True)
        self.process, self.chunks = process, []
        self.start()

    def run(self) -> None:
        while chunk := self.process.stderr.read(1):
            self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def finish(self) -> str:
        self.join(timeout=60)
        return self.text


def stop(server) -> None:
    """Stop the server the way an administrator's restart does: clients are disconnected at once."""
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def test_a_server_restarted_mid_trial_costs_no_trial(server, tiny_export, tmp_path):
    url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    # --heartbeat 1: the running trial touches the storage every second, so it meets the stopped server
    process = start("search", "--data", tiny_export, "--storage", url, "--trials", 2, "--epochs", 3, "--heartbeat", 1,
                    "--val-fraction", "0.25", "--no-baselines", "--no-early-stopping", env=command_env(tmp_path))
    stderr = StderrReader(process)

    def training():
        try:
            running = optuna.load_study(study_name="keypoints", storage=url).get_trials(states=(TrialState.RUNNING,))
        except KeyError:
            return None
        return running if running and running[0].user_attrs.get("history") else None

    wait_for(training, 300, "a trial in training", process)
    stop(server)
    # The trial trains on; its heartbeats (and epoch reports) wait for the server, and the user is told.
    wait_for(lambda: "lost the connection to storage" in stderr.text, 60, "the search to notice the server is gone")
    time.sleep(DOWN_SECONDS)
    server.ensure_postgres_running()
    assert process.wait(timeout=600) == 0
    err = stderr.finish()
    assert "Traceback" not in err, err[-3000:]
    assert f"storage {safe_url(url)} is back; the search goes on" in err
    study = optuna.load_study(study_name="keypoints", storage=url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert finished(study) == 2
