"""Outputs written whole or not at all: every file a command leaves for the user (``model.onnx``, ``model.pt``,
``metrics.json``, an exported config, a report, predictions) goes through ``replacing``.

The bytes go to a hidden temporary name in the output's own folder (``.model.partial-PID.onnx``: same file
system, same suffix, so libraries that pick a format by extension still do), are flushed to disk, and only then
renamed over the final name (``os.replace``, atomic on POSIX). A kill or a power cut at any moment leaves the
old output or the complete new one under the final name, never a half-written file that looks valid; at worst a
``.*.partial-*`` file is left beside it, which nothing reads and which may be deleted.

``KEYPOINT_NAS_PAUSE_BEFORE_RENAME=NAME`` makes the writer of the output named ``NAME`` wait (60 s) between
writing its temporary file and renaming it: the fault tests kill a command there, deterministically.
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

PAUSE_ENV = "KEYPOINT_NAS_PAUSE_BEFORE_RENAME"
PARTIAL = ".partial-"


def partial_name(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place."""
    return path.with_name(f".{path.stem}{PARTIAL}{os.getpid()}{path.suffix}")


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; on a clean exit it replaces ``path``, on an
    error it is removed and ``path`` is left as it was::

        with replacing(out / "model.pt") as tmp:
            torch.save(state, tmp)
    """
    path = Path(path)
    tmp = partial_name(path)
    try:
        yield tmp
        _flush(tmp)
        if os.environ.get(PAUSE_ENV) == path.name:
            time.sleep(60)
        os.replace(tmp, path)
        _flush_folder(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def write_json(path: str | Path, value: Any, indent: int | None = 2, **kwargs) -> Path:
    """``value`` as JSON with a final newline."""
    return write_text(path, json.dumps(value, indent=indent, **kwargs) + "\n")


def _flush(path: Path) -> None:
    # The rename must not reach the disk before the bytes do (a power cut would leave an empty final file).
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _flush_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
