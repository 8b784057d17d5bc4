"""Two searches that create one new database at the same instant: the one that loses the race to create a
table or the schema's version row opens the storage the other made, instead of failing (a clean-clone CI run
caught ``table trial_values already exists``)."""
from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy.exc

from search_engine import study


def lost_race(kind: str) -> Exception:
    orig = sqlite3.OperationalError("table trial_values already exists") if kind == "table" else \
        sqlite3.IntegrityError("UNIQUE constraint failed: version_info.version_info_id")
    wrapper = sqlalchemy.exc.OperationalError if kind == "table" else sqlalchemy.exc.IntegrityError
    return wrapper("CREATE TABLE trial_values", {}, orig)


@pytest.mark.parametrize("kind", ["table", "version row"])
def test_losing_the_schema_race_retries_and_opens_the_storage(tmp_path, monkeypatch, kind):
    real = study.SearchStorage
    calls = []

    def first_loses(url, **kwargs):
        calls.append(url)
        if len(calls) == 1:
            raise lost_race(kind)
        return real(url, **kwargs)

    monkeypatch.setattr(study, "SearchStorage", first_loses)
    monkeypatch.setattr(study.time, "sleep", lambda seconds: None)
    storage = study.open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert len(calls) == 2
    assert storage.get_all_studies() == []


def test_another_operational_error_is_not_retried(tmp_path, monkeypatch):
    calls = []

    def locked(url, **kwargs):
        calls.append(url)
        raise sqlalchemy.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(study, "SearchStorage", locked)
    with pytest.raises(sqlalchemy.exc.OperationalError):
        study.open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert len(calls) == 1
