"""Read a Supervisely point export (``ann/<image>.json`` + ``img/<image>``) into a ``ConeSet``.

Nothing here caches; ``cones.load`` puts the decoded cache in front of ``read_export``.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from cones.types import DEFAULT_SIZE, NUM_KEYPOINTS, ConeSet

BAD_QUALITY_TAG = "bad quality"
# Skip reasons, in the order the counts line lists them.
SKIP_REASONS = (
    "wrong point count", "malformed JSON", "missing image", "unreadable image", "size mismatch",
    "point outside image",
    "unlabelled keypoint", "point outside crop",  # COCO exports only (cones/coco.py)
)
LAYOUT = "<dir>/ann/<image>.json + <dir>/img/<image> (or a project folder holding such dataset folders)"
# <team>_<frame>_<cone>.<ext>, e.g. amz_00000_0.png; or <team>_<anything>, e.g. eikona_1061.jpg, so_200.bmp0.jpg
_NAME_PATTERN = re.compile(r"^(?P<team>[^_]+)_(?P<frame>[^_]+)_(?P<cone>\d+)\.[^.]+$")
_TEAM_PATTERN = re.compile(r"^(?P<team>[^_]+)_.+$")


class ExportError(ValueError):
    """Raised by strict loading: some annotation files fail the checks."""


@dataclass(frozen=True)
class Skip:
    file: str  # relative to the export folder, e.g. ann/x.png.json
    reason: str  # one of SKIP_REASONS
    detail: str  # e.g. "6 points, need 7"

    def __str__(self) -> str:
        return f"{self.file}: {self.detail} (skipped)"


@dataclass
class LoadReport:
    """What one load did: the counts line, the skipped files, and whether the cache served it."""

    source: str  # folder name, e.g. cones_dataset
    loaded: int
    skipped: list[Skip] = field(default_factory=list)
    from_cache: bool = False

    def counts(self) -> dict[str, int]:
        per_reason = Counter(s.reason for s in self.skipped)
        return {reason: per_reason[reason] for reason in SKIP_REASONS if per_reason[reason]}

    def summary(self) -> str:
        """``cones_dataset: 3,423 loaded, 29 skipped (wrong point count 29)``"""
        line = f"{self.source}: {self.loaded:,} loaded, {len(self.skipped):,} skipped"
        if self.skipped:
            line += " (" + ", ".join(f"{reason} {n:,}" for reason, n in self.counts().items()) + ")"
        return line

    def strict_error(self) -> ExportError:
        """One line: the first files and why, where to see them all, what to do."""
        shown = "; ".join(f"{s.file}: {s.detail}" for s in self.skipped[:3])
        more = (f"; {len(self.skipped) - 3:,} more (runners/inspect_data.py lists them all)"
                if len(self.skipped) > 3 else "")
        return ExportError(
            f"{self.source}: {len(self.skipped):,} of {self.loaded + len(self.skipped):,} annotation files fail "
            f"the checks (strict mode): {shown}{more}. Fix or delete these files, or drop --strict to skip them")

    def to_json(self) -> str:
        return json.dumps({"source": self.source, "loaded": self.loaded,
                           "skipped": [[s.file, s.reason, s.detail] for s in self.skipped]})

    @classmethod
    def from_json(cls, text: str, from_cache: bool = False) -> "LoadReport":
        d = json.loads(text)
        return cls(d["source"], int(d["loaded"]), [Skip(*s) for s in d["skipped"]], from_cache)


UNKNOWN_TEAM = "unknown"


def parse_name(name: str) -> tuple[str, str]:
    """(team, frame) of a crop's file name.

    ``amz_00000_0.png`` -> (``amz``, ``amz_00000``): team, frame and cone index. ``eikona_1061.jpg`` ->
    (``eikona``, ``eikona_1061``): a team and a number but no cone index, as many teams' exports name crops, so
    each crop is its own frame. A name without ``_`` (``cone7.png``) is its own frame of team ``unknown``.
    """
    match = _NAME_PATTERN.match(name)
    if match is not None:
        return match["team"], f"{match['team']}_{match['frame']}"
    match = _TEAM_PATTERN.match(name)
    if match is not None:
        return match["team"], Path(name).stem
    return UNKNOWN_TEAM, Path(name).stem


def canonical_order(points: np.ndarray) -> np.ndarray:
    """Reorder 7 cone points (7, 2) into base-right, mid-right, upper-right, top, upper-left, mid-left, base-left.

    Uses only the geometry, so any permutation of the input gives the same output. Top = smallest y
    (ties: the one nearest the median x). The flanks are the 3 points on either side of the top as seen
    from it (angle from straight down), which, unlike a split by x, survives a leaning cone. Each flank
    runs from the base (largest y; ties: farther from the top's x) to the upper point.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (NUM_KEYPOINTS, 2):
        raise ValueError(f"need {NUM_KEYPOINTS} points of (x, y), got shape {points.shape}")
    x, y = points[:, 0], points[:, 1]
    median_x = np.median(x)
    top = min(range(NUM_KEYPOINTS), key=lambda i: (y[i], abs(x[i] - median_x), x[i]))
    rest = [i for i in range(NUM_KEYPOINTS) if i != top]
    dx, dy = x - x[top], y - y[top]
    angle = np.arctan2(dx, dy)  # 0 = straight down, positive = to the right of the top
    by_angle = sorted(rest, key=lambda i: (angle[i], x[i], y[i]))
    left, right = by_angle[:3], by_angle[3:]

    def base_first(i: int) -> tuple:
        return -y[i], -abs(dx[i]), -x[i]

    order = sorted(right, key=base_first) + [top] + sorted(left, key=base_first)[::-1]
    return points[order]


def find_datasets(data_dir: Path) -> list[Path]:
    """The dataset folders (each with ann/ and img/) of an export: the folder itself or its subfolders."""
    if not data_dir.is_dir():
        raise ValueError(f"{data_dir}: no such directory; expected a Supervisely export laid out as {LAYOUT}")
    if _is_dataset(data_dir):
        return [data_dir]
    datasets = sorted(p for p in data_dir.iterdir() if p.is_dir() and _is_dataset(p))
    if not datasets:
        if data_dir.name in ("ann", "img") and _is_dataset(data_dir.parent):
            raise ValueError(f"{data_dir} is the {data_dir.name}/ folder of the export {data_dir.parent}; pass "
                             f"--data {data_dir.parent}")
        raise ValueError(f"{data_dir} is not a Supervisely export: no ann/ and img/ folders in it; "
                         f"expected {LAYOUT}")
    return datasets


def _is_dataset(path: Path) -> bool:
    return (path / "ann").is_dir() and (path / "img").is_dir()


def list_files(data_dir: Path) -> list[tuple[str, int, int]]:
    """(path relative to data_dir, size, mtime_ns) of every annotation and image file, sorted: the cache key."""
    files = []
    for dataset in find_datasets(data_dir):
        for sub in ("ann", "img"):
            with os.scandir(dataset / sub) as entries:
                for entry in entries:
                    if entry.is_file():
                        stat = entry.stat()
                        files.append((os.path.relpath(entry.path, data_dir), stat.st_size, stat.st_mtime_ns))
    return sorted(files)


def read_export(data_dir: str | Path, size: tuple[int, int] = DEFAULT_SIZE) -> tuple[ConeSet, LoadReport]:
    """Decode every usable annotated crop, resized to ``size`` (width, height); bad files go into the report.

    Raises ValueError if the folder is missing, not an export, or holds no usable crop.
    """
    data_dir = Path(data_dir)
    datasets = find_datasets(data_dir)
    jobs = []  # (label, ann path, img path, sample name)
    for dataset in datasets:
        prefix = "" if dataset == data_dir else dataset.name + "/"
        for ann in sorted((dataset / "ann").glob("*.json")):
            image_name = ann.name[: -len(".json")]
            jobs.append((f"{prefix}ann/{ann.name}", ann, dataset / "img" / image_name, prefix + image_name))
    if not jobs:
        raise ValueError(f"{data_dir}: no annotation files (ann/*.json); expected {LAYOUT}")

    # cv2 releases the GIL while decoding, so a few threads overlap PNG decoding with JSON parsing.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = list(pool.map(lambda job: _read_one(*job[:3], size), jobs))

    report = LoadReport(source=data_dir.resolve().name or str(data_dir), loaded=0)
    images, keypoints, bad_quality, names = [], [], [], []
    for (_, _, _, name), result in zip(jobs, results):
        if isinstance(result, Skip):
            report.skipped.append(result)
            continue
        image, points, bad = result
        images.append(image)
        keypoints.append(points)
        bad_quality.append(bad)
        names.append(name)
    report.loaded = len(names)
    if not names:
        raise ValueError(f"{report.summary()}: no usable crop in {data_dir}; first problem: {report.skipped[0]}")

    teams, frames = zip(*(parse_name(Path(n).name) for n in names))
    data = ConeSet(
        images=torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),  # (N, H, W, 3) -> (N, 3, H, W)
        keypoints=torch.from_numpy(np.stack(keypoints).astype(np.float32)),
        bad_quality=torch.tensor(bad_quality, dtype=torch.bool),
        names=tuple(names), teams=teams, frames=frames,
    )
    return data, report


def _read_one(label: str, ann: Path, img: Path, size: tuple[int, int]):
    """One crop as (image (H, W, 3) RGB uint8, keypoints (7, 2), bad quality) or the Skip saying why not."""
    try:
        with open(ann, "rb") as f:
            meta = json.load(f)
        points = [o["points"]["exterior"][0] for o in meta["objects"] if o.get("geometryType", "point") == "point"]
        points = np.asarray(points, dtype=np.float64).reshape(len(points), -1) if points else np.empty((0, 2))
        if points.shape[1] != 2:
            raise ValueError(f"points must be [x, y], got {points.shape[1]} coordinates")
        tags = {str(t["name"]).strip().lower() for t in meta.get("tags", [])}
        declared = meta.get("size", {})
        declared = (int(declared["width"]), int(declared["height"])) if declared else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        return Skip(label, "malformed JSON", f"not a Supervisely point annotation ({type(err).__name__}: {err}); "
                    "re-export it from Supervisely")
    except OSError as err:
        return Skip(label, "malformed JSON", f"cannot read it ({err.strerror})")
    if len(points) != NUM_KEYPOINTS:
        plural = "" if len(points) == 1 else "s"
        return Skip(label, "wrong point count", f"{len(points)} point{plural}, need {NUM_KEYPOINTS}")
    if not img.is_file():
        return Skip(label, "missing image", f"image img/{img.name} not found; add it or delete the annotation")
    image = cv2.imread(str(img), cv2.IMREAD_COLOR)
    if image is None:
        return Skip(label, "unreadable image", f"img/{img.name} cannot be decoded; replace it with a valid image")
    height, width = image.shape[:2]
    if declared is not None and declared != (width, height):
        return Skip(label, "size mismatch", f"annotated for {declared[0]}x{declared[1]} but img/{img.name} is "
                    f"{width}x{height}; re-export image and annotation together")
    outside = ~((points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height))
    if outside.any():
        x, y = points[np.argmax(outside)]
        return Skip(label, "point outside image", f"point ({x:g}, {y:g}) outside the {width}x{height} image; "
                    "move it inside in Supervisely")
    image, points = fit_to_size(image, canonical_order(points), size)
    return image, points, BAD_QUALITY_TAG in tags


def fit_to_size(image: np.ndarray, points: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A BGR crop resized to ``size`` (width, height) and returned as RGB, its points (7, 2) scaled with it."""
    height, width = image.shape[:2]
    if (width, height) != tuple(size):
        scale = np.array([size[0] / width, size[1] / height])
        points = (points + 0.5) * scale - 0.5  # pixel centres, as cv2.resize aligns them
        shrink = size[0] < width or size[1] < height
        image = cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), points
