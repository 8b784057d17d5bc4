"""Run a command (``python sqlite_faults.py runners/search.py ARGS``) on a SQLite file that misbehaves as a real
one does, set through the environment; SQLite itself raises each error:

- ``FAULT_MAX_PAGES=N``: the database may not grow past N pages (``PRAGMA max_page_count``): a full disk,
  "database or disk is full".
- ``FAULT_BUSY_MS=N``: wait N ms for a lock instead of 60 s (``PRAGMA busy_timeout``): "database is locked"
  past the wait, without the test waiting a minute.
- ``FAULT_READ_ONLY_AFTER=PATH``: once PATH exists, the connection refuses writes (``PRAGMA query_only``):
  "attempt to write a readonly database", as when the file is made read-only mid-run (tests run as root, whom
  chmod does not stop).
"""
import os
import runpy
import sys

import sqlalchemy.engine
import sqlalchemy.event


@sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
def _on_connect(connection, record):
    if not type(connection).__module__.startswith("sqlite3"):
        return
    if "FAULT_MAX_PAGES" in os.environ:
        connection.execute(f"PRAGMA max_page_count = {int(os.environ['FAULT_MAX_PAGES'])}")
    if "FAULT_BUSY_MS" in os.environ:
        connection.execute(f"PRAGMA busy_timeout = {int(os.environ['FAULT_BUSY_MS'])}")


@sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "before_cursor_execute")
def _before_execute(connection, cursor, statement, parameters, context, executemany):
    trigger = os.environ.get("FAULT_READ_ONLY_AFTER")
    if trigger and os.path.exists(trigger) and connection.dialect.name == "sqlite":
        cursor.connection.execute("PRAGMA query_only = ON")


if __name__ == "__main__":
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
