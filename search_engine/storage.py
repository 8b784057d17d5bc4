"""The study's storage when it fails: a lost PostgreSQL connection is waited out, anything else ends the
command with one line that names the storage and says what to do, finished trials kept.

- ``SearchStorage`` is Optuna's ``RDBStorage`` that (a) retries a call whose PostgreSQL connection was lost
  (a restarted or unreachable server) for up to ``RETRY_SECONDS`` with backoff, so a server back within that
  time costs no trial; (b) knows which trials this process is running, so that a fault can record them FAIL
  with the reason; (c) lets no heartbeat thread print a traceback (the main thread meets the same fault at its
  next write and reports it).
- ``storage_faults(url, command, storage)`` wraps a command that writes a study: a storage error (SQLite's
  "database or disk is full", "attempt to write a readonly database", "database is locked" past its 60 s wait,
  a PostgreSQL connection lost for good; Optuna's ``StorageInternalError`` around them, and the
  ``AssertionError: Should not reach.`` Optuna raises when it cannot record a trial's end) becomes one line and
  exit code 1. The running trials are recorded FAIL (status ``storage``) if the storage still takes a write;
  otherwise they stay RUNNING and the next run fails and retries them once their heartbeat is stale, as
  after a kill.

SQLite is never retried here: a full disk or a read-only file does not mend itself, and SQLite already waits
60 s for a lock (``open_storage``).
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Iterator

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

RETRY_SECONDS = 60.0
STORAGE_STATUS = "storage"  # the status attribute of a trial a storage fault cut off
RERUN = "rerun the same command to continue"

_logger = logging.getLogger(__name__)


def storage_error(error: BaseException | None) -> BaseException | None:
    """The database error behind ``error`` (itself, its cause or its context), or None if it is not one."""
    import sqlalchemy.exc

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (sqlalchemy.exc.DBAPIError, optuna.exceptions.StorageInternalError)):
            inner = error.__cause__ if isinstance(error, optuna.exceptions.StorageInternalError) else None
            return storage_error(inner) or error
        if type(error).__module__.split(".")[0] in ("sqlite3", "psycopg", "psycopg2"):
            return error
        error = error.__cause__ or error.__context__
    return None


def connection_lost(error: BaseException) -> bool:
    """A PostgreSQL (or other server) connection that broke or could not be made: worth waiting for."""
    import sqlalchemy.exc

    found = storage_error(error)
    if isinstance(found, sqlalchemy.exc.DBAPIError):
        return found.connection_invalidated or isinstance(found, (sqlalchemy.exc.OperationalError,
                                                                   sqlalchemy.exc.InterfaceError))
    return type(found).__name__ in ("OperationalError", "InterfaceError")


def describe_fault(url: str, error: BaseException) -> str:
    """What went wrong with the storage at ``url`` and what to do, in one line (no rerun advice)."""
    found = storage_error(error) or error
    lines = str(getattr(found, "orig", None) or found).strip().splitlines()  # sqlalchemy adds the SQL, a link
    detail = lines[0] if lines else type(found).__name__
    name = safe_url(url)
    text = detail.lower()
    if "full" in text or "no space" in text:
        return f"storage {name} is full ({detail}): free space on its disk, or move the database and point --storage at it"
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return (f"storage {name} cannot be written ({detail}): make the database file and its folder writable, or "
                "copy it somewhere writable and point --storage at the copy")
    if "locked" in text or "busy" in text:
        return (f"storage {name} stayed locked by another process past SQLite's 60 s wait ({detail}): stop or finish "
                "that process (several searches on one study need PostgreSQL)")
    if not url.startswith("sqlite") and connection_lost(found):
        return (f"storage {name} is unreachable ({detail}), still after {RETRY_SECONDS:g} s of retries: check that the "
                "database server is running and reachable")
    return f"storage {name} failed ({detail}): check the database"


def safe_url(url: str) -> str:
    """``url`` with its password hidden."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


class SearchStorage(RDBStorage):
    """``RDBStorage`` that waits out a lost server connection and knows which trials this process runs."""

    def __init__(self, url: str, *args, **kwargs):
        self.retry = not url.startswith("sqlite")
        self.waiting = False  # a lost connection is being waited for
        self.running_here: set[int] = set()
        self.failed_here: set[int] = set()  # FAIL by Optuna: a fault inside a trial fails it, without a reason
        super().__init__(url, *args, **kwargs)

    def _call(self, name: str, *args, **kwargs):
        method = getattr(super(), name)
        started, wait = time.monotonic(), 0.5
        while True:
            try:
                result = method(*args, **kwargs)
            except Exception as error:
                if not (self.retry and connection_lost(error)) or time.monotonic() - started + wait > RETRY_SECONDS:
                    raise
                if not self.waiting:  # once per outage, not per call: the search looks stalled otherwise
                    self.waiting = True
                    _logger.warning(f"lost the connection to storage {safe_url(self.url)}; waiting up to "
                                    f"{RETRY_SECONDS:g} s for it")
                time.sleep(wait)
                wait = min(wait * 2, 8.0)
            else:
                if self.waiting:
                    self.waiting = False
                    _logger.warning(f"storage {safe_url(self.url)} is back; the search goes on")
                return result

    def _create_new_trial(self, study_id, template_trial=None):
        # What both create_new_trial and Optuna's cache in front of this storage call.
        trial = self._call("_create_new_trial", study_id, template_trial)
        if trial.state == TrialState.RUNNING:
            self.running_here.add(trial._trial_id)
        return trial

    def set_trial_state_values(self, trial_id, state, values=None):
        changed = self._call("set_trial_state_values", trial_id, state, values)
        if changed and state == TrialState.RUNNING:
            self.running_here.add(trial_id)
        elif state.is_finished():
            self.running_here.discard(trial_id)
            if state == TrialState.FAIL:
                self.failed_here.add(trial_id)
        return changed

    def record_heartbeat(self, trial_id: int) -> None:
        # Runs in Optuna's heartbeat thread, where an exception would print a traceback and stop the beats.
        try:
            self._call("record_heartbeat", trial_id)
        except Exception as error:
            if storage_error(error) is None:
                raise
            _logger.debug("heartbeat of trial %d not recorded: %s", trial_id, error)

    def fail_running(self, reason: str) -> tuple[int, int]:
        """Record this process's running trials FAIL, with ``reason`` (status ``storage``) where the storage still
        takes it, once, without waiting: (trials now FAIL, trials left RUNNING for the next run to retry). A trial
        Optuna already failed for the fault (it broke a write inside the trial) is counted, and gets the reason."""
        self.retry = False
        failed = left = 0
        for trial_id in sorted(self.running_here | self.failed_here):
            try:
                trial = super().get_trial(trial_id)
            except Exception:
                left += trial_id in self.running_here
                continue
            if trial.state == TrialState.RUNNING:
                try:
                    super().set_trial_state_values(trial_id, TrialState.FAIL)
                except Exception:
                    left += 1
                    continue
            elif trial.state != TrialState.FAIL or "status" in trial.user_attrs:
                continue  # finished as it should, or failed for a reason of its own
            failed += 1
            try:
                super().set_trial_user_attr(trial_id, "status", STORAGE_STATUS)
                super().set_trial_user_attr(trial_id, "reason", reason[:600])
            except Exception:
                pass  # a full disk may take a state change and no new row: FAIL says enough
        self.running_here.clear()
        self.failed_here.clear()
        return failed, left


_OWN = {"_create_new_trial", "set_trial_state_values", "record_heartbeat", "fail_running"}
_DIRECT = {"get_heartbeat_interval", "get_heartbeat_stale_trial_callback", "remove_session", "upgrade",
           "get_current_version", "get_head_version", "get_all_versions"}
# The private ones Optuna's _CachedStorage and fail_stale_trials call on the storage behind them.
_PRIVATE = {"_get_stale_trial_ids", "_get_trials", "_get_best_trial_id", "_set_trial_param"}


def _retried(name: str):
    def method(self, *args, **kwargs):
        return self._call(name, *args, **kwargs)

    method.__name__ = name
    return method


for _name, _value in vars(RDBStorage).items():
    if callable(_value) and (not _name.startswith("_") or _name in _PRIVATE) and _name not in _OWN | _DIRECT:
        setattr(SearchStorage, _name, _retried(_name))


@contextmanager
def storage_faults(url: str, command: str, storage: list) -> Iterator[None]:
    """Turn a storage error inside the block into one line and exit code 1 (a ``SystemExit``).

    ``storage`` is a list the block appends its ``SearchStorage`` to once opened (the fault may come before)."""
    try:
        yield
    except Exception as error:
        if storage_error(error) is None:
            raise
        what = describe_fault(url, error)
        tail = ""
        if storage:
            failed, left = storage[0].fail_running(what)
            if failed:
                tail = "; the running trial is recorded FAIL and does not count"
            if left:
                tail = "; the running trial stays RUNNING until the next run retries it"
        raise SystemExit(f"{command}: {what}; then {RERUN} (finished trials are kept{tail})") from None

