"""Write a Supervisely point export as a COCO keypoints export, laid out as CVAT's "COCO Keypoints 1.0".

    python benchmarks/write_coco.py --data ../shared/cones_dataset --out /tmp/cones_coco
    python runners/inspect_data.py --data /tmp/cones_coco/annotations/person_keypoints_default.json

writes ``OUT/annotations/person_keypoints_default.json`` and copies the crops to ``OUT/images/``. Each crop is one
image with one annotation whose box covers the whole image (so the COCO reader treats it as a crop); its points
keep the Supervisely file's order (the reader orders them by geometry), all with visibility 2, and the ``bad
quality`` tag becomes the attribute ``{"bad quality": true}``. Files with another point count are written with
that many points, so the COCO load skips and counts them as the Supervisely load does. The check that both
loads agree is ``tests/cones/test_coco.py``; this script only converts, and refuses to write inside the export.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2

from cli.args import doc_parser
from cones.supervisely import BAD_QUALITY_TAG, find_datasets
from cones.types import KEYPOINT_NAMES

JSON_NAME = "annotations/person_keypoints_default.json"
CATEGORY = {"id": 1, "name": "cone", "supercategory": "cone", "keypoints": list(KEYPOINT_NAMES), "skeleton": []}


def convert(data_dir: Path, out: Path) -> dict:
    """Copy the images into ``out/images`` and return the COCO dict (written by ``main``)."""
    images, annotations = [], []
    for dataset in find_datasets(data_dir):
        prefix = "" if dataset == data_dir else dataset.name + "/"
        for ann_path in sorted((dataset / "ann").glob("*.json")):
            name = ann_path.name[: -len(".json")]
            meta = json.loads(ann_path.read_text())
            points = [o["points"]["exterior"][0] for o in meta["objects"] if o.get("geometryType", "point") == "point"]
            width, height = _size(meta, dataset / "img" / name)
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": prefix + name, "width": width, "height": height})
            tags = {str(t["name"]).strip().lower() for t in meta.get("tags", [])}
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                "bbox": [0, 0, width, height], "area": width * height,
                "keypoints": [v for x, y in points for v in (x, y, 2)], "num_keypoints": len(points),
                "attributes": {BAD_QUALITY_TAG: BAD_QUALITY_TAG in tags},
            })
            source = dataset / "img" / name
            if source.is_file():
                (out / "images" / prefix).mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, out / "images" / prefix / name)
    return {"info": {"description": f"converted from the Supervisely export {data_dir.name}"},
            "categories": [CATEGORY], "images": images, "annotations": annotations}


def _size(meta: dict, image: Path) -> tuple[int, int]:
    """(width, height): the annotation's declared size, else the image's own."""
    if meta.get("size"):
        return int(meta["size"]["width"]), int(meta["size"]["height"])
    read = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
    if read is None:
        raise ValueError(f"{image}: no declared size and the image cannot be read; fix the export first")
    return read.shape[1], read.shape[0]


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.add_argument("--data", type=Path, required=True, help="Supervisely export folder (ann/ and img/)")
    parser.add_argument("--out", type=Path, required=True, help="new folder for annotations/ and images/")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    data_dir, out = args.data.resolve(), args.out.resolve()
    if out == data_dir or data_dir in out.parents:
        parser.error(f"--out {args.out} lies inside the export {args.data}; pick a folder outside it")
    try:
        coco = convert(data_dir, out)
    except (ValueError, OSError, KeyError) as err:
        print(f"write_coco: {err}", file=sys.stderr)
        return 1
    (out / JSON_NAME).parent.mkdir(parents=True, exist_ok=True)
    (out / JSON_NAME).write_text(json.dumps(coco))
    print(f"{out / JSON_NAME}: {len(coco['images']):,} images, {len(coco['annotations']):,} annotations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
