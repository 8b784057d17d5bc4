"""Decoded-crop cache: one .npz per export folder or COCO file, outside the project and the data.

The key hashes the export's sorted file list (paths, sizes, mtimes; for a COCO file the JSON and every image it
names) and the working size (and the COCO framing margin), so editing, adding or deleting a file, or asking for
another size, rebuilds it. The load report is stored alongside, so a cached
load prints the same counts line and strict mode still sees the skipped files.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from cones import coco
from cones.supervisely import LoadReport, list_files
from cones.types import ConeSet

# Bump when decoding changes (keypoint order, resizing, skip rules) so old caches are not served.
FORMAT_VERSION = 2  # 2: <team>_<number> names keep their team


def cache_dir() -> Path:
    """``$KEYPOINT_NAS_CACHE``, else ``$XDG_CACHE_HOME/keypoint-nas``, else ``~/.cache/keypoint-nas``."""
    if os.environ.get("KEYPOINT_NAS_CACHE"):
        return Path(os.environ["KEYPOINT_NAS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "keypoint-nas"


def cache_path(data_dir: str | Path, size: tuple[int, int], extra: list | None = None) -> Path:
    """Where the decoded crops of this export (a folder or a COCO .json), at this size, with these ``extra``
    reading options and in its current state, are cached."""
    data_dir = Path(data_dir).resolve()
    files = coco.list_files(data_dir) if coco.is_coco(data_dir) else list_files(data_dir)
    key_parts = [FORMAT_VERSION, list(size), files] + ([extra] if extra else [])
    key = hashlib.sha256(json.dumps(key_parts).encode()).hexdigest()[:16]
    return cache_dir() / f"cones-{_folder_id(data_dir)}-{key}.npz"


def read_cache(path: Path, log: Callable[[str], object] = print) -> tuple[ConeSet, LoadReport] | None:
    """The cached crops and report, or None if there is no cache; a corrupt cache is reported and ignored."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            data = ConeSet(
                images=torch.from_numpy(z["images"]),
                keypoints=torch.from_numpy(z["keypoints"]),
                bad_quality=torch.from_numpy(z["bad_quality"]),
                names=tuple(z["names"].tolist()),
                teams=tuple(z["teams"].tolist()),
                frames=tuple(z["frames"].tolist()),
            )
            report = LoadReport.from_json(str(z["report"]), from_cache=True)
    except Exception as err:  # any damage (truncated zip, missing array, bad shapes) means: rebuild
        log(f"cache {path} is unreadable ({type(err).__name__}: {err}); rebuilding it")
        return None
    if report.loaded != len(data):
        log(f"cache {path} disagrees with its report ({len(data)} crops, report says {report.loaded}); rebuilding it")
        return None
    return data, report


def write_cache(path: Path, data: ConeSet, report: LoadReport, log: Callable[[str], object] = print) -> bool:
    """Store crops and report atomically and drop older caches of the same folder; False if it cannot write."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.stem, suffix=".tmp", delete=False) as f:
            tmp = Path(f.name)
            np.savez(
                f,
                images=data.images.numpy(), keypoints=data.keypoints.numpy(), bad_quality=data.bad_quality.numpy(),
                names=np.array(data.names, dtype=str), teams=np.array(data.teams, dtype=str),
                frames=np.array(data.frames, dtype=str), report=np.array(report.to_json()),
            )
        os.replace(tmp, path)
    except OSError as err:
        log(f"cannot write the data cache {path} ({err.strerror}); set KEYPOINT_NAS_CACHE to a writable folder "
            "to make the next load fast")
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        return False
    folder_prefix = path.name.rsplit("-", 1)[0]  # cones-<folder id>
    for stale in path.parent.glob(f"{folder_prefix}-*.npz"):
        if stale != path:
            try:
                stale.unlink()
            except OSError:
                pass  # another process may be replacing it; a stale file only costs disk
    return True


def _folder_id(data_dir: Path) -> str:
    return hashlib.sha256(str(data_dir).encode()).hexdigest()[:8]
