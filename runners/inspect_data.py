"""Check a cone export before training on it: what loads, what is skipped and why, per-team stats.

    python runners/inspect_data.py --data ../shared/cones_dataset
    python runners/inspect_data.py --data ../shared/cones_dataset --strict --size 48x64
    python runners/inspect_data.py --data cvat_export/annotations/person_keypoints_default.json --margin 0.3

--data is a Supervisely export folder or a COCO keypoints .json (CVAT "COCO Keypoints 1.0", Label Studio
"COCO") with its images; full frames in a COCO file are cut into crops around each cone's box (see --margin).

Prints the load report (counts per skip reason and every skipped file with the reason), then crops, frames,
``bad quality`` tags and keypoint span (mean width x height of the 7 points' bounding box) per team.
Exits non-zero with the reason if the folder or file is missing or not an export, or with --strict if any
annotation is bad.
"""
from __future__ import annotations

if __name__ == "__main__":  # first: Ctrl-C while the imports below run is one line and exit 130
    from cli.exits import stop_on_ctrl_c
    stop_on_ctrl_c("inspect_data")

import argparse
import sys
from collections import Counter

from cli.args import add_data_argument, doc_parser, non_negative_float
from cli.exits import run
from cones.coco import DEFAULT_MARGIN
from cones.load import load_export, merge_sources
from cones.supervisely import LAYOUT
from cones.types import DEFAULT_SIZE, ConeSet


def parse_size(text: str) -> tuple[int, int]:
    """``48x64`` -> (48, 64), width x height."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must be WIDTHxHEIGHT like 48x64, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"--size must be > 0 in both directions, got {text!r}")
    return width, height


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.epilog += (f"\n\nExpected layout: {LAYOUT}, or a COCO keypoints .json. Decoded crops are cached under "
                      "$KEYPOINT_NAS_CACHE (default ~/.cache/keypoint-nas), so a second run is fast.")
    add_data_argument(parser, "Supervisely export folder holding ann/ and img/, e.g. ../shared/cones_dataset, or a "
                              "COCO keypoints .json with its images beside it or in images/", required=True)
    parser.add_argument("--strict", action="store_true",
                        help="fail, listing the bad files, instead of skipping them")
    default_size = "x".join(map(str, DEFAULT_SIZE))
    parser.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, metavar="WxH",
                        help=f"working size crops are resized to, width x height (default {default_size})")
    parser.add_argument("--margin", type=non_negative_float, default=DEFAULT_MARGIN,
                        help="COCO full frames only: each cone's crop is its box grown by this share of the box's "
                             f"width and height on every side, then widened to the crop's aspect (default "
                             f"{DEFAULT_MARGIN}: the box fills about 71%% of the crop's height)")
    parser.add_argument("--no-cache", action="store_true", help="decode every file again, ignoring the cache")
    return parser


def describe(data: ConeSet) -> list[str]:
    """Per-team table: crops, frames, bad quality tags, mean keypoint span."""
    lines = [f"{'team':<10} {'crops':>6} {'frames':>6} {'bad quality':>11}  span w x h (px)"]
    teams = sorted(set(data.teams))
    for team in teams + ["all"]:
        index = [i for i, t in enumerate(data.teams) if t == team or team == "all"]
        points = data.keypoints[index]  # (n, 7, 2)
        span = (points.amax(dim=1) - points.amin(dim=1)).mean(dim=0)  # (2,) width, height
        frames = len({data.frames[i] for i in index})
        bad = int(data.bad_quality[index].sum())
        lines.append(f"{team:<10} {len(index):>6,} {frames:>6,} {bad:>11,}  {span[0]:.1f} x {span[1]:.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    parts, reports = [], []
    try:
        for source in args.data:
            data, report = load_export(source, size=args.size, strict=args.strict, use_cache=not args.no_cache,
                                       margin=args.margin)
            parts.append(data)
            reports.append(report)
        data = merge_sources(parts, args.data)
    except ValueError as err:
        print(f"inspect_data: {err}", file=sys.stderr)
        return 1
    for report in reports:
        if report.skipped:
            print(f"skipped files of {report.source} ({len(report.skipped):,}):")
            for skip in report.skipped:
                print(f"  {skip}")
    tags = Counter({"bad quality": int(data.bad_quality.sum())})
    print(f"{len(data):,} crops from {len(set(data.frames)):,} frames of {len(set(data.teams))} teams; "
          f"tags: {', '.join(f'{tag} {n:,}' for tag, n in tags.items())}"
          f"{' (served from cache)' if all(r.from_cache for r in reports) else ''}")
    print("\n".join(describe(data)))
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "inspect_data"))
