"""The checks on the paths a command is given, before any work: storages, inputs, outputs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from cli.exits import UserError

SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_STORAGE = "sqlite:///optuna.db"  # where search writes its study and export, report read it


def is_database(path: Path) -> bool:
    """A SQLite file (an Optuna study's storage) by its header, whatever it is named."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def sqlite_path(storage: str) -> Path | None:
    """The file of a ``sqlite:///`` storage URL, None for other storages."""
    return Path(storage[len("sqlite:///"):]) if storage.startswith("sqlite:///") else None


def check_storage(storage: str, must_exist: bool) -> None:
    """A SQLite storage must be a database (or, for a search, not exist yet): Optuna would otherwise fail
    deep inside sqlalchemy, or create an empty database where a reader expected a study."""
    path = sqlite_path(storage)
    if path is None:
        return
    if not path.exists():
        if must_exist:
            raise UserError(f"--storage {storage}: no such file {path}; point --storage at the search's database "
                            f"({DEFAULT_STORAGE} by default)")
        if not path.parent.is_dir():
            raise UserError(f"--storage {storage}: no folder {path.parent} to create the database in")
        return
    # An empty file is a database another search is creating this instant (SQLite opens it as a new one).
    if path.stat().st_size and not is_database(path):
        raise UserError(f"--storage {storage}: {path} is not a SQLite database; point --storage at the search's "
                        f"database ({DEFAULT_STORAGE} by default) or at a new file")
    if not must_exist and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        # A search writes trials (and SQLite a journal beside the file); reading commands need neither.
        raise UserError(f"--storage {storage}: {path} (or its folder) is read-only; a search writes to it. Make it "
                        "writable, or copy it somewhere writable and point --storage at the copy")


def input_path(path: str | Path, option: str, kind: str = "any") -> Path:
    """An input that must exist: ``kind`` "file", "dir" or "any"."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{option} {path}: no such file or folder")
    if kind == "file" and not path.is_file():
        raise UserError(f"{option} {path} is a folder; give a file")
    if kind == "dir" and not path.is_dir():
        raise UserError(f"{option} {path} is a file; give a folder")
    return path


def _protected(out: Path, option: str, inputs: Iterable[Path]) -> None:
    if out.is_file() and is_database(out):
        raise UserError(f"{option} {out} is a database (an Optuna study?); it is never written over, "
                        "pick another path")
    resolved = out.resolve()
    for item in inputs:
        item = Path(item).resolve()
        if resolved == item or (item.is_dir() and item in resolved.parents):
            raise UserError(f"{option} {out} is or lies inside the input {item}; pick a path of its own")


def check_out_dir(out: str | Path, option: str = "--out", force: bool = False, inputs: Iterable[Path] = ()) -> Path:
    """An output folder, checked before any work: not a file, not an input, new or empty unless ``force``."""
    out = Path(out)
    _protected(out, option, inputs)
    if out.exists() and not out.is_dir():
        raise UserError(f"{option} {out} is a file; give a folder (a new one)")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"{option} {out} already exists and is not empty; pick a new folder, or add --force to "
                        "write over the files this command writes there")
    return out


def check_out_file(out: str | Path, option: str = "--out", force: bool = False, inputs: Iterable[Path] = ()) -> Path:
    """An output file, checked before any work: not a folder, not a database, not an input, new unless ``force``."""
    out = Path(out)
    _protected(out, option, inputs)
    if out.is_dir():
        raise UserError(f"{option} {out} is a folder; give a file name (e.g. {out / 'best.json'})")
    if out.exists() and not force:
        raise UserError(f"{option} {out} already exists; pick a new name, or add --force to write over it")
    return out
