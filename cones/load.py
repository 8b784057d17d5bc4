"""The one entry point for data: a Supervisely export folder or a COCO keypoints .json (both cached) or, without
``--data``, synthetic cones."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from cones.cache import cache_path, read_cache, write_cache
from cones.coco import DEFAULT_MARGIN, is_coco, read_coco
from cones.supervisely import UNKNOWN_TEAM, LoadReport, read_export
from cones.types import DEFAULT_SIZE, ConeSet

SYNTHETIC_COUNT = 2000


def load_data(data_dir: str | Path | None, size: tuple[int, int] = DEFAULT_SIZE, strict: bool = False,
              log: Callable[[str], object] = print, margin: float = DEFAULT_MARGIN) -> ConeSet:
    """Crops of ``data_dir`` at ``size`` (width, height); synthetic cones if None.

    ``data_dir`` is a Supervisely export folder or a COCO keypoints .json (``cones.coco``; ``margin`` frames the
    cones of full frames). Logs one counts line; annotations that fail the checks are skipped, or with
    ``strict`` raise ExportError (a ValueError) listing them.
    """
    if data_dir is None:
        from cones.synthetic import make_synthetic  # only the synthetic path needs it

        log(f"no data folder given: using {SYNTHETIC_COUNT:,} synthetic cones; pass --data DIR "
            "(a Supervisely export with ann/ and img/, or a COCO keypoints .json) to use real crops")
        return make_synthetic(n=SYNTHETIC_COUNT, seed=0, size=tuple(size))
    return load_export(data_dir, size=size, strict=strict, log=log, margin=margin)[0]


def load_export(data_dir: str | Path, size: tuple[int, int] = DEFAULT_SIZE, strict: bool = False,
                log: Callable[[str], object] = print, use_cache: bool = True,
                margin: float = DEFAULT_MARGIN) -> tuple[ConeSet, LoadReport]:
    """Like ``load_data`` for an export, also returning the report (skipped files, ``from_cache``)."""
    size = _check_size(size)
    coco = is_coco(data_dir)
    # The margin changes full frames' crops, so it is part of a COCO file's cache key.
    path = cache_path(data_dir, size, extra=[margin] if coco else None)  # ValueError on a missing or bad export
    cached = read_cache(path, log=log) if use_cache else None
    if cached is not None:
        data, report = cached
    else:
        data, report = read_coco(data_dir, size=size, margin=margin) if coco else read_export(data_dir, size=size)
        if use_cache:
            write_cache(path, data, report, log=log)
    log(report.summary())
    if strict and report.skipped:
        raise report.strict_error()
    unnamed = [frame for team, frame in zip(data.teams, data.frames) if team == UNKNOWN_TEAM]
    if unnamed:
        log(f"warning: {len(unnamed):,} crops of {data_dir} are not named <team>_<frame>_<n> (e.g. {unnamed[0]!r}): "
            f"they form one team {UNKNOWN_TEAM!r}, each crop its own frame, so --val-teams cannot hold a camera out "
            "and a frame split cannot keep a frame's cones together; rename them like amz_00012_0.png")
    return data, report


def _check_size(size) -> tuple[int, int]:
    if len(size) != 2 or min(int(v) for v in size) < 1:
        raise ValueError(f"size must be (width, height) > 0, got {tuple(size)}")
    return int(size[0]), int(size[1])
