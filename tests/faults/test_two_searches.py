"""Two searches started at the same instant on a new SQLite study, with optuna-dashboard reading it all along:
both finish cleanly, they never sample the same parameters (they used to share the sampler's seed), and
every read the dashboard makes succeeds."""
from __future__ import annotations

import json
import sqlite3
import threading
import urllib.request
from contextlib import closing
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import pytest
from optuna.trial import TrialState

from studies.reader import finished
from tests.faults.conftest import command_env, start, wait_for

pytestmark = pytest.mark.slow

TRIALS = 4


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class DashboardReader(threading.Thread):
    """Reads the study list and each study's trials through optuna-dashboard's API until stopped."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        self.base, self.stop, self.reads, self.errors = base, threading.Event(), 0, []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(f"{self.base}/api/studies", timeout=60) as response:
                    studies = json.load(response)["study_summaries"]
                for study in studies:
                    with urllib.request.urlopen(f"{self.base}/api/studies/{study['study_id']}", timeout=60) as response:
                        json.load(response)
                self.reads += 1
            except Exception as error:  # an HTTP 500 (a locked database), a timeout: what the test looks for
                self.errors.append(repr(error))
            self.stop.wait(0.2)


def study_exists(db: Path) -> bool:
    """The searches have made the schema and the study: a row in ``studies``, read without writing."""
    if not db.exists() or db.stat().st_size == 0:
        return False
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as connection:
            return connection.execute("SELECT COUNT(*) FROM studies").fetchone()[0] > 0
    except sqlite3.Error:  # no such table yet, or locked: not yet
        return False


@pytest.fixture(scope="module")
def together(tiny_export, tmp_path_factory):
    """Start the two searches, then the dashboard on their study once it exists; (URL, [(code, out, err)] of
    the two searches, the dashboard's reader)."""
    from optuna_dashboard import wsgi

    root = tmp_path_factory.mktemp("together")
    db = root / "study.db"
    url = f"sqlite:///{db}"
    # The sampler alone picks the trials (no hand designs, starting points or fair share), at random: with one
    # seed for both processes, both would draw the same parameters.
    argv = ["--data", tiny_export, "--storage", url, "--trials", TRIALS, "--epochs", "1", "--val-fraction", "0.25",
            "--no-baselines", "--no-starting-point", "--no-fair-share", "--sampler", "random"]
    searches = [start("search", *argv, env=command_env(root)) for _ in range(2)]
    try:
        # The dashboard opens the storage as a third process: started while the searches still create the schema,
        # it would race them for it (optuna-dashboard does not retry); a user opens it on a study that exists.
        wait_for(lambda: study_exists(db), 120, "the study in its database")
        server = make_server("127.0.0.1", 0, wsgi(url), handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        reader = DashboardReader(f"http://127.0.0.1:{server.server_port}")
        reader.start()
        try:
            outcomes = [(*p.communicate(timeout=600), p.returncode) for p in searches]
        finally:
            reader.stop.set()
            reader.join()
            server.shutdown()
    finally:
        for process in searches:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return url, outcomes, reader


def test_two_searches_started_together_both_finish_without_a_traceback(together):
    url, outcomes, _ = together
    for out, err, code in outcomes:
        assert code == 0 and "Traceback" not in err, err
    study = optuna.load_study(study_name="keypoints", storage=url)
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states and TrialState.FAIL not in states
    assert finished(study) >= TRIALS


def test_two_searches_started_together_never_sample_the_same_parameters(together):
    url, _, _ = together
    study = optuna.load_study(study_name="keypoints", storage=url)
    params = [json.dumps(t.params, sort_keys=True) for t in study.trials]
    assert len(set(params)) == len(params)


def test_the_dashboard_reads_the_study_while_two_searches_write_it(together):
    _, _, reader = together
    assert reader.errors == [] and reader.reads >= 3
