"""A PostgreSQL server stopped and started again in the middle of a trial costs no trial: the search waits for it
(up to ``objectives.storage.RETRY_SECONDS``, with backoff) and finishes as if nothing happened; one that stays
away ends the search with one line and exit code 1.

The server is always the test's own (``pgserver``, as in tests/runners/test_postgres.py): a server named by
KEYPOINT_NAS_PG_URL is not the test's to stop."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from objectives.study_reader import finished
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


def stop(server) -> None:
    """Stop the server the way an administrator's restart does: clients are disconnected at once."""
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def test_a_server_restarted_mid_trial_costs_no_trial(server, tiny_export, tmp_path):
    url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    process = start("search", "--data", tiny_export, "--storage", url, "--trials", 2, "--epochs", 3,
                    "--val-fraction", "0.25", "--no-baselines", "--no-early-stopping", env=command_env(tmp_path))

    def training():
        try:
            running = optuna.load_study(study_name="keypoints", storage=url).get_trials(states=(TrialState.RUNNING,))
        except KeyError:
            return None
        return running if running and running[0].user_attrs.get("history") else None

    wait_for(training, 300, "a trial in training", process)
    stop(server)
    time.sleep(DOWN_SECONDS)  # the trial trains on; its epoch reports and heartbeats wait for the server
    server.ensure_postgres_running()
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0 and "Traceback" not in err, err[-3000:]
    study = optuna.load_study(study_name="keypoints", storage=url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert finished(study) == 2
