"""Scaling out for real: a 2-worker Ray search writes a PostgreSQL study that a fresh process reads back.

Needs a server: ``KEYPOINT_NAS_PG_URL`` (default ``postgresql+psycopg://nas:nas@127.0.0.1:5432/postgres``, a role
that may CREATE DATABASE; ``.ci/system-packages.sh`` sets one up). Each run works in a fresh database
``nas_test_<random>`` and drops it. Without a server the test fails under CI and skips, loudly, elsewhere.
"""
import json
import os
import secrets
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import REPO
from tests.runners.test_search import TRIAL_ATTRS

pytestmark = pytest.mark.slow

DEFAULT_URL = "postgresql+psycopg://nas:nas@127.0.0.1:5432/postgres"

READ_BACK = """
import json, sys
import optuna
study = optuna.load_study(study_name="keypoints", storage=sys.argv[1])
print(json.dumps({
    "max_bytes": study.user_attrs.get("max_bytes"),
    "trials": [{"number": t.number, "state": t.state.name, "attrs": sorted(t.user_attrs),
                "baseline": t.user_attrs.get("baseline"), "steps": sorted(t.intermediate_values)}
               for t in study.trials],
}))
"""


def connect(url: str):
    import psycopg

    parts = make_url(url)
    return psycopg.connect(host=parts.host, port=parts.port or 5432, user=parts.username, password=parts.password,
                           dbname=parts.database, connect_timeout=5, autocommit=True)


@pytest.fixture()
def pg_database():
    """URL of a fresh, empty database on the server, dropped after the test."""
    url = os.environ.get("KEYPOINT_NAS_PG_URL", DEFAULT_URL)
    try:
        admin = connect(url)
    except Exception as error:  # no psycopg, no server, wrong password: all mean "PostgreSQL not tested"
        message = (f"POSTGRESQL PATH NOT TESTED: cannot connect to {make_url(url)!r} ({error}). "
                   "Run `bash .ci/system-packages.sh` (as root) or set KEYPOINT_NAS_PG_URL to a role with CREATEDB.")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    name = f"nas_test_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(url).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_ray_workers_write_a_study_that_a_fresh_process_reads_back(pg_database, tiny_export, tmp_path):
    env = {**os.environ, "KEYPOINT_NAS_CACHE": str(tmp_path / "cache")}
    # The README's step before any worker starts: create the schema once.
    subprocess.run([sys.executable, "-c", "import optuna, sys; optuna.storages.RDBStorage(sys.argv[1])", pg_database],
                   env=env, check=True, timeout=120)
    search = subprocess.run(
        [sys.executable, str(REPO / "runners" / "search.py"), "--data", str(tiny_export), "--storage", pg_database,
         "--workers", "2", "--trials", "4", "--epochs", "2", "--val-fraction", "0.25"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert search.returncode == 0, search.stderr[-3000:]

    read = subprocess.run([sys.executable, "-c", READ_BACK, pg_database], env=env, capture_output=True, text=True,
                          check=True, timeout=120)
    study = json.loads(read.stdout)
    assert study["max_bytes"] == 81_920
    complete = [t for t in study["trials"] if t["state"] == "COMPLETE"]
    assert [t["number"] for t in complete] == [0, 1, 2, 3]
    for t in complete:
        assert TRIAL_ATTRS | {"history", "baseline", "worker"} <= set(t["attrs"])
        assert t["baseline"].startswith("resnet8") and t["steps"] == [1, 2]
    assert {t["state"] for t in study["trials"]} <= {"COMPLETE", "WAITING"}  # the rest of the hand designs
