"""Find the 7 keypoints on cone crops with an exported model (ONNX Runtime only; torch is not needed).

    python runners/predict.py crops/ more/amz_00001_0.png --out predictions/
    python runners/predict.py --model model/model.onnx crops/ --out predictions/

Without --model it runs the model packaged with the project (``models/default/model.onnx``, trained on every
shared crop; ``deploy/packaged.py``), found from any working directory.

Every image (a folder means the images directly in it) is resized to the model's input (48 x 64) and the
keypoints are mapped back to the original image's pixels (x right, y down, pixel centres). Writes to --out:

    keypoints.json           per image: file, width, height, {keypoint name: [x, y]}
    keypoints.csv            file, keypoint, x, y: one row per keypoint
    <name>_keypoints.png     the crop enlarged (--scale times the model's input) with the keypoints drawn,
                             one colour per keypoint and a legend, to judge the predictions by eye
"""
from __future__ import annotations

if __name__ == "__main__":  # first: Ctrl-C while the imports below run is one line and exit 130
    from cli.exits import stop_on_ctrl_c
    stop_on_ctrl_c("predict")

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np

from cli.args import doc_parser, positive_float, positive_int
from cli.exits import UserError, run
from cli.paths import check_out_dir
from deploy.atomic import replacing, write_json
from deploy.exported import ExportedModel
from deploy.packaged import notice, packaged_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# One colour per keypoint in canonical order (RGB): right flank warm, top magenta, left flank cool.
COLOURS = ((230, 25, 75), (245, 130, 48), (255, 225, 25), (240, 50, 230), (70, 240, 240), (0, 130, 200),
           (60, 180, 75))
_SHIFT = 4  # cv2 drawing fraction bits: keypoints are drawn at sub-pixel positions


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.model is None:
        try:
            args.model = str(packaged_dir() / "model.onnx")
        except FileNotFoundError as error:
            raise UserError(str(error)) from None
        print(notice(Path(args.model)))
    try:
        files = image_files(args.inputs)
        model = ExportedModel(args.model, threads=args.threads)
    except (FileNotFoundError, ValueError) as error:
        raise UserError(str(error)) from None
    # Never into an input folder: the next run would read the drawings as crops.
    out = check_out_dir(args.out, force=args.force, inputs=[Path(i) for i in args.inputs] + [Path(args.model)])
    out.mkdir(parents=True, exist_ok=True)

    records, drawn_names, skipped = [], set(), []
    for start in range(0, len(files), args.batch):
        chunk, originals = [], []
        for path in files[start:start + args.batch]:
            image = read_rgb(path)
            if image is None:
                skipped.append(path)
            else:
                chunk.append(path)
                originals.append(image)
        if not chunk:
            continue
        batch = np.stack([to_input(image, model.input_size) for image in originals])  # (n, 3, H, W) float32
        keypoints, _ = model.run(batch)  # (n, 7, 2) input pixels
        for path, image, points in zip(chunk, originals, keypoints):
            points = to_original(points, model.input_size, (image.shape[1], image.shape[0]))
            drawing = out / _unique(f"{path.stem}_keypoints.png", drawn_names)
            with replacing(drawing) as tmp:
                cv2.imwrite(str(tmp), draw(image, points, model.keypoint_names, args.scale * model.input_size[1])[..., ::-1])
            records.append({
                "file": str(path), "width": image.shape[1], "height": image.shape[0],
                "keypoints": {name: [round(float(x), 3), round(float(y), 3)]
                              for name, (x, y) in zip(model.keypoint_names, points)},
                "drawing": str(drawing),
            })

    document = {"model": str(args.model), "input_size": list(model.input_size),
                "keypoint_names": list(model.keypoint_names), "images": records,
                "skipped": [{"file": str(path), "reason": "not an image OpenCV can read"} for path in skipped]}
    write_json(out / "keypoints.json", document)
    with replacing(out / "keypoints.csv") as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "keypoint", "x", "y"])
        for record in records:
            for name, (x, y) in record["keypoints"].items():
                writer.writerow([record["file"], name, x, y])
    print(f"{len(records)} images: wrote {out / 'keypoints.json'}, {out / 'keypoints.csv'} and "
          f"{len(records)} drawings in {out}")
    if skipped:
        shown = ", ".join(str(path) for path in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        print(f"predict: skipped {len(skipped)} files OpenCV cannot read as images (listed in keypoints.json): "
              f"{shown}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.add_argument("--model", help="model.onnx written by runners/retrain.py or adapt.py (default: the packaged "
                                        "model, models/default/model.onnx)")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="crops, or folders of crops")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="new folder for keypoints.json, .csv and drawings (not an input folder)")
    parser.add_argument("--force", action="store_true", help="write into --out even if it holds files")
    parser.add_argument("--scale", type=positive_float, default=6.0,
                        help="drawings are this many times the model's input height (default 6)")
    parser.add_argument("--batch", type=positive_int, default=64, help="crops per ONNX Runtime call (default 64)")
    parser.add_argument("--threads", type=positive_int, help="ONNX Runtime intra-op threads (default: its choice)")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    return parser.parse_args(argv)


def image_files(inputs: list[str]) -> list[Path]:
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise ValueError(f"{item}: no images ({', '.join(IMAGE_SUFFIXES)}) directly in it; "
                                 f"for a Supervisely export pass {item / 'img'}")
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return files


def read_rgb(path: Path) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB, or None for a file OpenCV cannot read as an image."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # (H, W, 3) BGR; grey and alpha are converted
    return None if image is None else np.ascontiguousarray(image[..., ::-1])


def to_input(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB of any size -> (3, h, w) float32 in [0, 1] at the model's (w, h)."""
    if (image.shape[1], image.shape[0]) != tuple(size):
        shrink = image.shape[1] > size[0] or image.shape[0] > size[1]
        image = cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return image.transpose(2, 0, 1).astype(np.float32) / 255


def to_original(points: np.ndarray, model_size: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
    """(7, 2) keypoints in model-input pixels -> the original image's pixels (pixel centres, as cv2.resize)."""
    scale = np.array(image_size, np.float64) / np.array(model_size, np.float64)
    return (points.astype(np.float64) + 0.5) * scale - 0.5


def draw(image: np.ndarray, points: np.ndarray, names: tuple[str, ...], height: float) -> np.ndarray:
    """The crop enlarged to ``height`` pixels (nearest, so its pixels stay visible), the flank outline, each
    keypoint as a coloured dot, and a legend strip below. RGB in, RGB out."""
    factor = height / image.shape[0]
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    canvas = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST if factor >= 1 else cv2.INTER_AREA)
    canvas = np.ascontiguousarray(canvas)
    fixed = np.round(((points + 0.5) * factor - 0.5) * (1 << _SHIFT)).astype(np.int32)  # (7, 2)
    cv2.polylines(canvas, [fixed.reshape(-1, 1, 2)], False, (255, 255, 255), 1, cv2.LINE_AA, _SHIFT)
    radius = max(3, round(factor * 0.6))
    for (x, y), colour in zip(fixed, COLOURS):
        cv2.circle(canvas, (int(x), int(y)), (radius + 1) << _SHIFT, (0, 0, 0), -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(canvas, (int(x), int(y)), radius << _SHIFT, colour, -1, cv2.LINE_AA, _SHIFT)

    row = 15
    legend = np.full((row * len(names) + 6, max(canvas.shape[1], 130), 3), 32, np.uint8)
    for i, (name, colour) in enumerate(zip(names, COLOURS)):
        y = 4 + row * i + row // 2
        cv2.circle(legend, (10, y), 5, colour, -1, cv2.LINE_AA)
        cv2.putText(legend, f"{i} {name}", (22, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (235, 235, 235), 1, cv2.LINE_AA)
    if legend.shape[1] > canvas.shape[1]:
        canvas = cv2.copyMakeBorder(canvas, 0, 0, 0, legend.shape[1] - canvas.shape[1], cv2.BORDER_CONSTANT,
                                    value=(32, 32, 32))
    return np.vstack([canvas, legend])


def _unique(name: str, taken: set[str]) -> str:
    stem, suffix, n = name[:-len(".png")], ".png", 2
    candidate = name
    while candidate in taken:
        candidate, n = f"{stem}_{n}{suffix}", n + 1
    taken.add(candidate)
    return candidate


if __name__ == "__main__":
    sys.exit(run(main, "predict"))
