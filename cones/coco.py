"""Read a COCO keypoints file (CVAT's "COCO Keypoints 1.0", Label Studio's COCO export) into a ``ConeSet``.

    data, report = read_coco("export/annotations/person_keypoints_default.json")

One annotation is one cone with 7 labelled keypoints (``keypoints`` = [x, y, v, ...], v > 0 where labelled),
ordered by geometry exactly as in Supervisely exports (``cones.supervisely.canonical_order``). An image's
``file_name`` is looked for beside the JSON, in ``images/`` beside it, and in ``../images/`` (CVAT puts the JSON
in ``annotations/`` and the pictures in ``images/``); a path that is not found there is also tried by its bare
file name in those folders (Label Studio writes ``images/<name>`` or an upload path).

Two kinds of image:

- **a crop**: the annotation's ``bbox`` covers the whole image (within 1 px) or there is no box. It is read as it
  is and resized to the working size, keypoints scaled, as a Supervisely crop is.
- **a full frame**: any other box is a cone in a bigger picture. The crop is cut the way a team's detector frames
  a cone: the box grows by ``margin`` of its width and height on every side (default ``DEFAULT_MARGIN`` = 0.2,
  so the cone's box fills 1 / 1.4 = 71% of the crop's height, as in the shared set's crops), then widens or heightens
  about its centre to the working size's aspect (48 : 64), is padded with black where it leaves the frame, and is
  resized to the working size; the keypoints are mapped into it.

Names follow the Supervisely reader (``cones.supervisely.parse_name``): a crop's ``file_name``
``<team>_<frame>_<cone>.png`` gives its team and frame. A full frame's cones are named ``<stem>_<k>.<ext>`` (k
counts the image's annotations in file order); their frame is the image's stem and their team the stem's part
before the first ``_`` (``unknown`` without one). The ``bad quality`` tag is an annotation attribute
(``attributes: {"bad quality": true}``; CVAT exports attributes there).

Annotations that fail a check are skipped and counted by reason in the same ``LoadReport`` as Supervisely files;
a file that is not COCO keypoints at all raises ValueError naming the file and what to export instead.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch

from cones.supervisely import (BAD_QUALITY_TAG, UNKNOWN_TEAM, LoadReport, Skip, canonical_order, fit_to_size,
                              parse_name)
from cones.types import DEFAULT_SIZE, NUM_KEYPOINTS, ConeSet

DEFAULT_MARGIN = 0.2
COCO_HELP = ("export keypoints from CVAT as 'COCO Keypoints 1.0' or from Label Studio as 'COCO' and pass the "
             ".json file with its images beside it or in images/")
_WHOLE_IMAGE_SLACK = 1.0  # px: a box this close to the image's edges covers the whole image


def is_coco(path: str | Path) -> bool:
    """True for a file (a COCO JSON, or something mistaken for one); folders are Supervisely exports."""
    path = Path(path)
    return path.is_file() or (path.suffix.lower() == ".json" and not path.is_dir())


def read_json(path: str | Path) -> dict:
    """The parsed COCO file, checked for what this reader needs; ValueError naming the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file; {COCO_HELP}")
    if path.suffix.lower() != ".json":
        raise ValueError(f"{path} is a file but not a .json (unzip an export first); pass a COCO keypoints .json "
                         "or a Supervisely export folder")
    try:
        with open(path, "rb") as f:
            coco = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); {COCO_HELP}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read it ({err}); {COCO_HELP}") from None
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list) \
            or not isinstance(coco.get("annotations"), list):
        raise ValueError(f"{path} is not a COCO file (it needs 'images' and 'annotations' lists); {COCO_HELP}")
    if not any(isinstance(a, dict) and "keypoints" in a for a in coco["annotations"]):
        raise ValueError(f"{path}: none of its {len(coco['annotations']):,} annotations has keypoints (a boxes-only "
                         f"COCO export?); {COCO_HELP}")
    return coco


def find_image(json_path: Path, file_name: str) -> Path | None:
    """Where ``file_name`` of an image entry lies: beside the JSON, in images/ beside it, or in ../images/."""
    folders = [json_path.parent, json_path.parent / "images", json_path.parent.parent / "images"]
    relative = Path(file_name.replace("\\", "/").lstrip("/"))
    for candidate in [folder / relative for folder in folders] + [folder / relative.name for folder in folders]:
        if candidate.is_file():
            return candidate
    return None


def list_files(json_path: str | Path) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of the JSON and of every image it names (-1 when missing), sorted: the cache key."""
    json_path = Path(json_path).resolve()
    coco = read_json(json_path)
    stat = json_path.stat()
    files = {(json_path.name, stat.st_size, stat.st_mtime_ns)}
    for entry in coco["images"]:
        found = find_image(json_path, str(entry.get("file_name", ""))) if isinstance(entry, dict) else None
        if found is None:
            files.add((f"missing:{entry.get('file_name') if isinstance(entry, dict) else entry}", -1, -1))
        else:
            image_stat = found.stat()
            files.add((str(found), image_stat.st_size, image_stat.st_mtime_ns))
    return sorted(files)


def read_coco(json_path: str | Path, size: tuple[int, int] = DEFAULT_SIZE,
              margin: float = DEFAULT_MARGIN) -> tuple[ConeSet, LoadReport]:
    """Decode every usable cone of a COCO keypoints file at ``size`` (width, height); bad ones go in the report.

    Raises ValueError if the file is missing, not COCO keypoints, or holds no usable cone.
    """
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0 (a share of the box's width and height), got {margin}")
    json_path = Path(json_path)
    coco = read_json(json_path)
    images = {entry.get("id"): entry for entry in coco["images"] if isinstance(entry, dict)}
    by_image: dict = defaultdict(list)
    report = LoadReport(source=json_path.name, loaded=0)
    for index, ann in enumerate(coco["annotations"]):
        label = _label(ann, index, images)
        if not isinstance(ann, dict) or ann.get("image_id") not in images:
            image_id = ann.get("image_id") if isinstance(ann, dict) else None
            report.skipped.append(Skip(label, "missing image", f"image_id {image_id!r} is not in the file's images "
                                       "list; re-export images and annotations together"))
            continue
        by_image[ann["image_id"]].append((label, ann))

    jobs = [(json_path, images[image_id], anns, size, margin) for image_id, anns in by_image.items()]
    # cv2 releases the GIL while decoding, so a few threads overlap decoding full frames.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = [r for per_image in pool.map(lambda job: _read_image(*job), jobs) for r in per_image]

    samples = []
    for result in results:
        (report.skipped if isinstance(result, Skip) else samples).append(result)
    report.loaded = len(samples)
    if not samples:
        first = f"; first problem: {report.skipped[0]}" if report.skipped else ""
        raise ValueError(f"{report.summary()}: no usable cone in {json_path}{first}")
    crops, points, bad, names, teams, frames = zip(*samples)
    data = ConeSet(
        images=torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous(),  # (N, H, W, 3) -> (N, 3, H, W)
        keypoints=torch.from_numpy(np.stack(points).astype(np.float32)),
        bad_quality=torch.tensor(bad, dtype=torch.bool),
        names=names, teams=teams, frames=frames,
    )
    return data, report


def _label(ann, index: int, images: dict) -> str:
    """How a skipped annotation is named: ``annotation 17 (amz_00024_4.png)``."""
    if not isinstance(ann, dict):
        return f"annotation #{index}"
    entry = images.get(ann.get("image_id"))
    where = f" ({entry.get('file_name')})" if entry else ""
    return f"annotation {ann.get('id', f'#{index}')}{where}"


def _read_image(json_path: Path, entry: dict, anns: list, size: tuple[int, int], margin: float) -> list:
    """The samples (image, points, bad, name, team, frame) or Skips of one image's annotations."""
    file_name = str(entry.get("file_name", ""))
    parsed = []  # (label, points, box, bad) of annotations whose JSON is usable
    out: list = []
    for label, ann in anns:
        result = _parse(label, ann)
        (out if isinstance(result, Skip) else parsed).append(result)
    if not parsed:
        return out
    path = find_image(json_path, file_name)
    if path is None:
        return out + [Skip(label, "missing image", f"image {file_name} not found beside {json_path.name}, in "
                           "images/ or ../images/; put the export's images there") for label, *_ in parsed]
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return out + [Skip(label, "unreadable image", f"{file_name} cannot be decoded; replace it with a valid image")
                      for label, *_ in parsed]
    height, width = image.shape[:2]
    declared = (entry.get("width"), entry.get("height"))
    if None not in declared and tuple(int(v) for v in declared) != (width, height):
        return out + [Skip(label, "size mismatch", f"annotated for {declared[0]}x{declared[1]} but {file_name} is "
                           f"{width}x{height}; re-export images and annotations together") for label, *_ in parsed]
    stem, suffix = Path(file_name).stem, Path(file_name).suffix or ".png"
    for k, (label, points, box, bad) in enumerate(parsed):
        outside = ~((points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height))
        if outside.any():
            x, y = points[np.argmax(outside)]
            out.append(Skip(label, "point outside image", f"point ({x:g}, {y:g}) outside the {width}x{height} "
                            "image; move it inside in the labelling tool"))
            continue
        points = canonical_order(points)
        if _covers_image(box, width, height):
            crop, points = fit_to_size(image, points, size)
            name = file_name
            team, frame = parse_name(Path(name).name)
        else:
            cut = _cut(image, points, box, size, margin)
            if isinstance(cut, str):
                out.append(Skip(label, "point outside crop", cut))
                continue
            crop, points = cut
            name = str(Path(file_name).with_name(f"{stem}_{k}{suffix}"))
            team, frame = (stem.split("_", 1)[0] if "_" in stem else UNKNOWN_TEAM), stem
        out.append((crop, points, bad, name, team, frame))
    return out


def _parse(label: str, ann: dict):
    """(label, points (7, 2) in file order, box or None, bad quality) or the Skip saying why not."""
    try:
        values = np.asarray(ann["keypoints"], dtype=np.float64).ravel()
        if values.size % 3:
            raise ValueError(f"{values.size} numbers, not [x, y, v] triples")
        triples = values.reshape(-1, 3)
        box = ann.get("bbox")
        box = [float(v) for v in box] if box else None
        if box is not None and len(box) != 4:
            raise ValueError(f"bbox must be [x, y, width, height], got {len(box)} numbers")
        attributes = ann.get("attributes") or {}
        bad = any(str(k).strip().lower().replace("_", " ") == BAD_QUALITY_TAG and v not in (False, None, 0, "false")
                  for k, v in attributes.items())
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        return Skip(label, "malformed JSON", f"not a COCO keypoints annotation ({type(err).__name__}: {err}); "
                    "re-export it as COCO Keypoints")
    labelled = triples[triples[:, 2] > 0, :2]
    if len(labelled) != NUM_KEYPOINTS:
        if len(triples) == NUM_KEYPOINTS:
            missing = ", ".join(str(i + 1) for i in np.flatnonzero(triples[:, 2] <= 0))
            return Skip(label, "unlabelled keypoint", f"keypoint {missing} of {NUM_KEYPOINTS} has visibility 0 "
                        "(not labelled); label every point")
        plural = "" if len(labelled) == 1 else "s"
        return Skip(label, "wrong point count", f"{len(labelled)} point{plural}, need {NUM_KEYPOINTS}")
    return label, labelled, box if box and box[2] > 0 and box[3] > 0 else None, bad


def _covers_image(box: list[float] | None, width: int, height: int) -> bool:
    if box is None:
        return True
    x, y, w, h = box
    return (x <= _WHOLE_IMAGE_SLACK and y <= _WHOLE_IMAGE_SLACK
            and x + w >= width - _WHOLE_IMAGE_SLACK and y + h >= height - _WHOLE_IMAGE_SLACK)


def crop_window(box: list[float], size: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """(x0, y0, width, height) in whole pixels: ``box`` grown by ``margin`` per side, then to ``size``'s aspect."""
    x, y, w, h = box
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    aspect = size[0] / size[1]
    w, h = max(w, h * aspect), max(h, w / aspect)
    w, h = max(1, round(w)), max(1, round(h))
    return round(x + box[2] / 2 - w / 2), round(y + box[3] / 2 - h / 2), w, h


def _cut(image: np.ndarray, points: np.ndarray, box: list[float], size: tuple[int, int], margin: float):
    """The cone's crop at ``size`` and its points, or why not (a point outside the framed crop)."""
    x0, y0, w, h = crop_window(box, size, margin)
    local = points - (x0, y0)
    outside = ~((local[:, 0] >= 0) & (local[:, 0] < w) & (local[:, 1] >= 0) & (local[:, 1] < h))
    if outside.any():
        x, y = points[np.argmax(outside)]
        return (f"point ({x:g}, {y:g}) outside the crop {w}x{h} at ({x0}, {y0}) framed around bbox "
                f"{[round(v, 1) for v in box]} with margin {margin:g}; fix the box or raise the margin")
    height, width = image.shape[:2]
    pad = max(0, -x0, -y0, x0 + w - width, y0 + h - height)
    if pad:  # the window leaves the frame: black beyond its edge, as a detector's crop of the border would be
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    window = image[y0 + pad: y0 + pad + h, x0 + pad: x0 + pad + w]
    return fit_to_size(np.ascontiguousarray(window), local, size)
