"""The one entry point for data: a Supervisely export (cached) or, without ``--data``, synthetic cones."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from cones.cache import cache_path, read_cache, write_cache
from cones.supervisely import LoadReport, read_export
from cones.types import DEFAULT_SIZE, ConeSet

SYNTHETIC_COUNT = 2000


def load_data(data_dir: str | Path | None, size: tuple[int, int] = DEFAULT_SIZE, strict: bool = False,
              log: Callable[[str], object] = print) -> ConeSet:
    """Crops of ``data_dir`` (a Supervisely export) at ``size`` (width, height); synthetic cones if None.

    Logs one counts line; files that fail the checks are skipped, or with ``strict`` raise ExportError
    (a ValueError) listing them.
    """
    if data_dir is None:
        from cones.synthetic import make_synthetic  # only the synthetic path needs it

        log(f"no data folder given: using {SYNTHETIC_COUNT:,} synthetic cones; pass --data DIR "
            "(a Supervisely export with ann/ and img/) to use real crops")
        return make_synthetic(n=SYNTHETIC_COUNT, seed=0, size=tuple(size))
    return load_export(data_dir, size=size, strict=strict, log=log)[0]


def load_export(data_dir: str | Path, size: tuple[int, int] = DEFAULT_SIZE, strict: bool = False,
                log: Callable[[str], object] = print, use_cache: bool = True) -> tuple[ConeSet, LoadReport]:
    """Like ``load_data`` for an export, also returning the report (skipped files, ``from_cache``)."""
    size = _check_size(size)
    path = cache_path(data_dir, size)  # raises ValueError on a missing or non-export folder
    cached = read_cache(path, log=log) if use_cache else None
    if cached is not None:
        data, report = cached
    else:
        data, report = read_export(data_dir, size=size)
        if use_cache:
            write_cache(path, data, report, log=log)
    log(report.summary())
    if strict and report.skipped:
        raise report.strict_error()
    return data, report


def _check_size(size) -> tuple[int, int]:
    if len(size) != 2 or min(int(v) for v in size) < 1:
        raise ValueError(f"size must be (width, height) > 0, got {tuple(size)}")
    return int(size[0]), int(size[1])
