"""ONNX Runtime latency per crop on one thread, at batch 1 and 32, for an exported model and the hand designs.

    python benchmarks/inference.py [model/model.onnx] [--repeats 200]

The hand designs (resnet width 8 depth 2, unet width 8 depth 3) are exported untrained: latency does not depend
on the weights. One intra-op thread (``intra_op_num_threads=1``) gives a figure close to a small on-car
computer's single core and independent of this machine's core count. Prints median and 90th-percentile
milliseconds per crop (a batch's time divided by its size) and crops per second at the median.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from cli.args import doc_parser, non_negative_int, positive_int
from cli.exits import UserError, run
from search_space.config import BYTES_PER_KB

BATCHES = (1, 32)
HAND_DESIGNS = {
    "resnet w8 d2 (hand)": dict(family="resnet", width=8, depth=2),
    "unet w8 d3 (hand)": dict(family="unet", width=8, depth=3),
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from deploy.exported import ExportedModel, initializer_bytes

    if args.model is not None:
        try:  # a file that is not a keypoint model is one line before anything is timed
            ExportedModel(args.model)
        except ValueError as error:
            raise UserError(str(error)) from None
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        if args.model is not None:
            models[f"{Path(args.model).name}"] = Path(args.model)
        models.update(export_hand_designs(Path(tmp)))
        print(f"ONNX Runtime, 1 thread, {args.repeats} timed runs per batch size (after {args.warmup} warm-up)")
        print(f"{'model':<22} {'KB':>6} {'batch':>5} {'median ms/crop':>15} {'p90 ms/crop':>12} {'crops/s':>9}")
        for name, path in models.items():
            model = ExportedModel(path, threads=1)
            kb = initializer_bytes(path).weight_bytes / BYTES_PER_KB
            for batch in BATCHES:
                median, p90 = latency(model, batch, args.repeats, args.warmup)
                print(f"{name:<22} {kb:>6.1f} {batch:>5} {median:>15.3f} {p90:>12.3f} {1000 / median:>9.0f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.add_argument("model", nargs="?", help="an exported model.onnx to time besides the hand designs")
    parser.add_argument("--repeats", type=positive_int, default=200, help="timed runs per batch size (default 200)")
    parser.add_argument("--warmup", type=non_negative_int, default=20, help="untimed runs first (default 20)")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.model is not None and not Path(args.model).is_file():
        parser.error(f"model {args.model}: no such file; export one with runners/retrain.py")
    return args


def export_hand_designs(folder: Path) -> dict[str, Path]:
    from deploy.onnx_export import export_untrained
    from search_space.config import Config

    paths = {}
    for name, fields in HAND_DESIGNS.items():
        path = folder / f"{fields['family']}.onnx"
        export_untrained(Config(**fields), path)
        paths[name] = path
    return paths


def latency(model, batch: int, repeats: int, warmup: int) -> tuple[float, float]:
    """(median, p90) milliseconds per crop for batches of ``batch`` random crops."""
    width, height = model.input_size
    images = np.random.default_rng(0).random((batch, 3, height, width), dtype=np.float32)
    for _ in range(warmup):
        model.run(images)
    times = np.empty(repeats)
    for i in range(repeats):
        started = time.perf_counter()
        model.run(images)
        times[i] = time.perf_counter() - started
    per_crop = times * 1000 / batch
    return float(np.median(per_crop)), float(np.percentile(per_crop, 90))


if __name__ == "__main__":
    sys.exit(run(main, "inference"))
