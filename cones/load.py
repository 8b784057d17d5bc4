"""The one entry point for data: a Supervisely export folder or a COCO keypoints .json (both cached), several of
them (``--data`` given more than once, each team keeping its name) or, without ``--data``, synthetic cones."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence, Union

import torch

from cones.cache import cache_path, read_cache, write_cache
from cones.coco import DEFAULT_MARGIN, is_coco, read_coco
from cones.supervisely import UNKNOWN_TEAM, LoadReport, read_export
from cones.types import DEFAULT_SIZE, ConeSet

SYNTHETIC_COUNT = 2000

# One source (a folder or a .json), several (``--data`` given more than once), or None for synthetic cones.
Sources = Union[str, Path, Sequence[Union[str, Path]], None]


def source_list(data: Sources) -> list[Path]:
    """The sources of ``data`` as a list of paths (empty for synthetic cones)."""
    if data is None:
        return []
    if isinstance(data, (str, Path)):
        return [Path(data)]
    return [Path(item) for item in data]


def source_record(data: Sources, resolve: bool = False) -> str | list[str]:
    """What a study or a model's metrics.json records of ``data``: ``synthetic``, one path, or a list of paths
    (``load_data`` reads each form back)."""
    paths = [p.resolve() if resolve else p for p in source_list(data)]
    if not paths:
        return "synthetic"
    return str(paths[0]) if len(paths) == 1 else [str(p) for p in paths]


def data_options(data: Sources) -> list[str]:
    """``["--data", A, "--data", B]``: the command-line options that read ``data`` again (none for synthetic)."""
    return [item for path in source_list(data) for item in ("--data", str(path))]


def data_flags(data: Sources) -> str:
    """``--data A --data B``, as one string for messages."""
    return " ".join(data_options(data))


def describe_sources(data: Sources) -> str:
    """``a`` or ``a + b`` (``synthetic`` without sources), for messages."""
    return " + ".join(str(p) for p in source_list(data)) or "synthetic"


def load_data(data_dir: Sources, size: tuple[int, int] = DEFAULT_SIZE, strict: bool = False,
              log: Callable[[str], object] = print, margin: float = DEFAULT_MARGIN) -> ConeSet:
    """Crops of ``data_dir`` at ``size`` (width, height); synthetic cones if None.

    ``data_dir`` is a Supervisely export folder or a COCO keypoints .json (``cones.coco``; ``margin`` frames the
    cones of full frames), or a list of them: their crops together, each team keeping its name; a team found in
    two sources is refused (ValueError naming both), since its crops would mix two cameras or count twice.
    Logs one counts line per source; annotations that fail the checks are skipped, or with ``strict`` raise
    ExportError (a ValueError) listing them.
    """
    sources = source_list(data_dir)
    if not sources:
        from cones.synthetic import make_synthetic  # only the synthetic path needs it

        log(f"no data folder given: using {SYNTHETIC_COUNT:,} synthetic cones; pass --data DIR "
            "(a Supervisely export with ann/ and img/, or a COCO keypoints .json) to use real crops")
        return make_synthetic(n=SYNTHETIC_COUNT, seed=0, size=tuple(size))
    if len({source.resolve() for source in sources}) < len(sources):  # before any is read
        raise ValueError(f"--data names one source twice ({', '.join(map(str, sources))}); give each source once")
    parts = [load_export(source, size=size, strict=strict, log=log, margin=margin)[0] for source in sources]
    return merge_sources(parts, sources)


def merge_sources(parts: Sequence[ConeSet], sources: Sequence[Path]) -> ConeSet:
    """The crops of several sources as one set; ValueError if a team appears in two of them."""
    if len(parts) == 1:
        return parts[0]
    seen: dict[str, Path] = {}
    for part, source in zip(parts, sources):
        for team in sorted(set(part.teams)):
            if team in seen:
                raise ValueError(
                    f"team {team!r} is in both {seen[team]} and {source}: its crops would count as one camera. "
                    f"If they are two cameras, rename one source's files (e.g. {team}2_00012_0.png for "
                    f"{team}_00012_0.png); if they are the same crops, give only one of the sources")
            seen[team] = source
    return ConeSet(
        images=torch.cat([p.images for p in parts]), keypoints=torch.cat([p.keypoints for p in parts]),
        bad_quality=torch.cat([p.bad_quality for p in parts]),
        names=sum((p.names for p in parts), ()), teams=sum((p.teams for p in parts), ()),
        frames=sum((p.frames for p in parts), ()),
    )


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
        log(f"warning: {len(unnamed):,} crops of {data_dir} are not named <team>_<frame>_<n> or <team>_<n> "
            f"(e.g. {unnamed[0]!r}): "
            f"they form one team {UNKNOWN_TEAM!r}, each crop its own frame, so --val-teams cannot hold a camera out "
            "and a frame split cannot keep a frame's cones together; rename them like amz_00012_0.png (team, frame, "
            "cone) or amz_12.png (team, crop)")
    return data, report


def _check_size(size) -> tuple[int, int]:
    if len(size) != 2 or min(int(v) for v in size) < 1:
        raise ValueError(f"size must be (width, height) > 0, got {tuple(size)}")
    return int(size[0]), int(size[1])
