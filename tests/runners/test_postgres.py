"""Scaling out for real: a 2-worker Ray search writes a PostgreSQL study that a fresh process reads back.

The server: ``KEYPOINT_NAS_PG_URL`` if set (a role that may CREATE DATABASE, e.g.
``postgresql+psycopg://nas:nas@db-host:5432/postgres``); otherwise the test starts its own from the ``pgserver``
pip package (in the dev extra: PostgreSQL's binaries in a wheel, no system package, no root), in a temporary
folder, on a Unix socket, and deletes it afterwards. As root, pgserver runs the server as a system user
``pgserver`` it creates (PostgreSQL refuses to run as root). Each run works in a fresh database
``nas_test_<random>`` and drops it. Nothing here skips: a server that cannot be reached or started fails the test.
"""
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import warnings

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import REPO
from tests.runners.test_search import TRIAL_ATTRS

pytestmark = pytest.mark.slow

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
    """A psycopg connection from a SQLAlchemy URL (TCP host:port or a Unix socket folder in ``?host=``)."""
    import psycopg

    libpq_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(libpq_url, connect_timeout=5, autocommit=True)


@pytest.fixture(scope="module")
def pg_server_url():
    """SQLAlchemy URL of a server whose role may create databases: KEYPOINT_NAS_PG_URL, or one started here."""
    if os.environ.get("KEYPOINT_NAS_PG_URL"):
        yield os.environ["KEYPOINT_NAS_PG_URL"]
        return
    with warnings.catch_warnings():  # platformdirs warns that XDG_RUNTIME_DIR is unset (pgserver's lock goes to /tmp)
        warnings.simplefilter("ignore")
        import pgserver  # the dev extra's PostgreSQL; `pip install -e ".[dev]"` brings it

    # A short path under the temp folder: the socket's path must stay under ~100 characters, and as root
    # pgserver opens the folders above it to its own user.
    pgdata = tempfile.mkdtemp(prefix="keypoint-nas-pg-")
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture()
def pg_database(pg_server_url):
    """URL of a fresh, empty database on the server, dropped after the test."""
    try:
        admin = connect(pg_server_url)
    except Exception as error:
        pytest.fail(f"cannot connect to PostgreSQL at {make_url(pg_server_url)!r} ({error}); unset "
                    "KEYPOINT_NAS_PG_URL to let the test start its own server, or point it at a role with CREATEDB")
    name = f"nas_test_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_ray_workers_write_a_study_that_a_fresh_process_reads_back(pg_database, tiny_export, tmp_path):
    env = {**os.environ, "KEYPOINT_NAS_CACHE": str(tmp_path / "cache")}
    # The README's step before any worker starts: create the schema once.
    subprocess.run([sys.executable, "-c", "import optuna, sys; optuna.storages.RDBStorage(sys.argv[1])", pg_database],
                   env=env, check=True, timeout=120)
    search = subprocess.run(
        [sys.executable, str(REPO / "runners" / "search.py"), "--data", str(tiny_export), "--storage", pg_database,
         "--workers", "2", "--trials", "4", "--epochs", "2", "--val-fraction", "0.25", "--reference-first"],
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
