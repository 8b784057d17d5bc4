"""Retrain an exported config from scratch for the full budget and write the model a team deploys.

    python runners/retrain.py --config best.json --data ../shared/cones_dataset --out model/
    python runners/retrain.py --config best.json --data ../shared/cones_dataset --out repro/ --reproduce

Trains on the search's split (from the JSON; ``--val-teams`` overrides it) with every augmentation
(``AugmentConfig()``), the cosine learning-rate schedule over ``--epochs`` and early stopping on the validation
error (the best epoch's weights are kept). Prints each epoch and the final metrics, and writes to ``--out``:

    model.pt       state dict (batch norm unfolded, to fine-tune) and the config dict
    model.onnx     input image float32 [N, 3, 64, 48] RGB in [0, 1]; outputs keypoints float32 [N, 7, 2]
                   (x, y input pixels, canonical order) and heatmaps [N, 7, 64, 48]; batch norm folded
    metrics.json   validation figures, the ONNX file's exact weight bytes, ONNX Runtime vs torch agreement

A config over the size cap (the study's, or ``--max-kb``) is refused before training. ``--reproduce`` repeats
the search's run of the trial instead (its epochs, seed and schedule, no early stopping, last epoch's weights)
and prints the search's validation error next to the new one. Without ``--data`` synthetic cones are used
(``--reproduce`` uses the search's data).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from cones.augment import AugmentConfig
from cones.load import load_data
from cones.splits import split
from cones.types import KEYPOINT_NAMES
from deploy.exported import ExportedModel
from deploy.onnx_export import OversizeError, export_onnx
from objectives.heatmaps import decode
from objectives.metrics import Metrics
from objectives.train import predict_heatmaps, train
from search_space.config import Config
from search_space.size import BYTES_PER_KB, DEFAULT_MAX_KB, max_bytes, measure
from runners.cli import doc_parser

DEFAULT_EPOCHS = 60
DEFAULT_PATIENCE = 15
AGREEMENT_PX = 1e-3  # ONNX Runtime and torch keypoints must agree this closely
REPRODUCE_TOLERANCE = 0.05


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    record = read_record(args.config)
    cfg = Config.from_dict(record["config"])
    cap = max_bytes(args.max_kb) if args.max_kb is not None else int(record.get("max_bytes", max_bytes(DEFAULT_MAX_KB)))
    size = measure(cfg)
    if size.weight_bytes > cap:
        raise SystemExit(f"retrain: the config has {size.weight_bytes} bytes of weights ({size.kb:.1f} KB), over the "
                         f"cap of {cap} bytes ({cap / BYTES_PER_KB:g} KB); it could not ship, so it is not trained. "
                         f"Shrink width/depth in {args.config} or export a smaller trial (export.py --max-kb)")
    search = record.get("search", {})
    plan = training_plan(args, record)

    data_split = dict(record.get("data") or {})
    data_dir = args.data
    searched_on = data_split.get("data", "synthetic")
    if data_dir is None and args.reproduce and searched_on not in (None, "synthetic"):
        data_dir = searched_on
        print(f"--reproduce: using the search's data {data_dir}")
    elif data_dir is None and searched_on not in (None, "synthetic"):
        print(f"note: the search ran on {searched_on}; pass --data {searched_on} to retrain on it")
    if args.val_teams is None:
        val_teams = data_split.get("val_teams")
    else:  # "--val-teams tuwr amz" or, as runners/search.py takes them, "--val-teams tuwr,amz"
        val_teams = [team for item in args.val_teams for team in item.split(",") if team] or None
    val_fraction = float(data_split.get("val_fraction", 0.1))
    split_seed = int(data_split.get("seed", 0))
    data = load_data(data_dir)
    try:
        train_set, val_set = split(data, val_fraction=val_fraction, val_teams=val_teams, seed=split_seed)
    except ValueError as error:
        raise SystemExit(f"retrain: {error}") from None

    print(f"{cfg}\n{size.weight_bytes} bytes ({size.kb:.1f} KB), {size.params:,} parameters, "
          f"{size.macs / 1e6:.1f} M MACs per crop; {len(train_set)} training and {len(val_set)} validation crops "
          f"({'teams ' + ', '.join(val_teams) if val_teams else f'{val_fraction:.0%} of the frames'})")
    print(f"training up to {plan['epochs']} epochs, seed {plan['seed']}, {plan['schedule']} schedule, "
          + ("last epoch's weights (reproducing the search)" if args.reproduce
             else f"early stopping after {plan['patience']} epochs without improvement" if plan["patience"]
             else "best epoch's weights, no early stopping"))
    result = train(cfg, train_set, val_set, plan["epochs"], seed=plan["seed"], augmentation=plan["augmentation"],
                   on_epoch=ProgressPrinter(plan["epochs"]), threads=args.threads, schedule=plan["schedule"],
                   keep_best=plan["keep_best"], patience=plan["patience"])
    if result.status == "diverged":
        raise SystemExit(f"retrain: training diverged ({result.reason}); lower lr in {args.config} and retry")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = result.model.eval()
    torch.save({"config": cfg.to_dict(),
                "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                "metrics": result.metrics.to_dict()}, out / "model.pt")
    try:
        exported = export_onnx(model, cfg, out / "model.onnx", max_bytes=cap)
    except OversizeError as error:
        raise SystemExit(f"retrain: {error}") from None
    agreement = check_agreement(model, out / "model.onnx", val_set)

    metrics = {
        "config": cfg.to_dict(),
        "val": result.metrics.to_dict(),
        "val_per_keypoint_px": dict(zip(KEYPOINT_NAMES, result.metrics.per_keypoint_px)),
        "val_onnx_mean_px": agreement["onnx_mean_px"],
        "onnx_vs_torch_max_px": agreement["max_px"],
        "onnx_agrees": agreement["agrees"],
        "weight_bytes": exported.weight_bytes,  # the ONNX file's weight initializers, float32
        "weight_kb": exported.weight_bytes / BYTES_PER_KB,
        "onnx_constant_bytes": exported.constant_bytes,
        "max_bytes": cap,
        "params": exported.params,
        "macs": size.macs,
        "status": result.status,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.train_seconds, 1),
        "history": result.history,
        "seed": plan["seed"],
        "schedule": plan["schedule"],
        "keep_best": plan["keep_best"],
        "patience": plan["patience"],
        "augmentation": asdict(plan["augmentation"]) if plan["augmentation"] is not None else "train default",
        "data": {"data": str(data_dir) if data_dir is not None else "synthetic", "val_teams": val_teams,
                 "val_fraction": val_fraction, "seed": split_seed,
                 "train_crops": len(train_set), "val_crops": len(val_set)},
        "search": search,
        "command": "python " + " ".join([sys.argv[0] if argv is None else "runners/retrain.py",
                                         *(sys.argv[1:] if argv is None else argv)]),
    }
    if args.reproduce:
        metrics["reproduce"] = compare_with_search(search, result.metrics.mean_px)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    print(final_report(result.metrics, exported.weight_bytes, cap, agreement, out))
    if args.reproduce:
        print(reproduce_line(metrics["reproduce"]))
    if not agreement["agrees"]:
        raise SystemExit(f"retrain: ONNX Runtime and torch disagree by up to {agreement['max_px']:.4g} px on the "
                         f"validation set (tolerance {AGREEMENT_PX} px); do not ship {out / 'model.onnx'}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = doc_parser(__doc__)
    parser.add_argument("--config", required=True, help="JSON written by runners/export.py (or edited from one)")
    parser.add_argument("--data", metavar="DIR", help="Supervisely export with ann/ and img/ (default: synthetic cones)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for model.pt, model.onnx, metrics.json")
    parser.add_argument("--epochs", type=int, help=f"epoch budget (default {DEFAULT_EPOCHS}; the trial's own with "
                                                   "--reproduce)")
    parser.add_argument("--seed", type=int, help="training seed (default: the JSON's seed)")
    parser.add_argument("--patience", type=int, default=DEFAULT_PATIENCE,
                        help=f"stop after this many epochs without a better validation error (default "
                             f"{DEFAULT_PATIENCE}; 0 turns early stopping off)")
    parser.add_argument("--val-teams", nargs="*", metavar="TEAM",
                        help="validate on these teams (space- or comma-separated) instead of the JSON's split; "
                             "with no team, a frame split of the JSON's val_fraction")
    parser.add_argument("--max-kb", type=float, help="size cap in KB (default: the study's cap from the JSON)")
    parser.add_argument("--reproduce", action="store_true",
                        help="repeat the search's run: the trial's epochs, seed and schedule, no early stopping")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.patience < 0:
        parser.error(f"--patience must be >= 0, got {args.patience}")
    return args


def read_record(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"retrain: --config {path}: no such file; write one with runners/export.py")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SystemExit(f"retrain: --config {path} is not valid JSON ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise SystemExit(f"retrain: --config {path} has no \"config\" object; expected the output of runners/export.py")
    try:
        Config.from_dict(record["config"])
    except (TypeError, ValueError) as error:
        raise SystemExit(f"retrain: --config {path}: {error}") from None
    return record


def training_plan(args: argparse.Namespace, record: dict) -> dict:
    """Epochs, seed, schedule, augmentation and early stopping: the search's own with --reproduce."""
    search = record.get("search", {})
    seed = args.seed if args.seed is not None else int(record.get("seed", search.get("seed", 0)))
    if args.reproduce:
        if args.epochs is None and "epochs" not in search:
            raise SystemExit(f"retrain: --reproduce needs the trial's epochs, and {args.config} has no search.epochs; "
                             "pass --epochs")
        augmentation = search.get("augmentation")
        return {"epochs": args.epochs or int(search["epochs"]), "seed": seed,
                "schedule": search.get("schedule", "cosine"),
                "augmentation": _augment_config(augmentation) if isinstance(augmentation, dict) else None,
                "keep_best": False, "patience": None}
    return {"epochs": args.epochs or DEFAULT_EPOCHS, "seed": seed, "schedule": "cosine",
            "augmentation": AugmentConfig(), "keep_best": True, "patience": args.patience or None}


class ProgressPrinter:
    """The ``on_epoch`` callback: one line per epoch with the error, the best so far and the time left."""

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.started = time.perf_counter()
        self.best = (math.inf, 0)

    def __call__(self, epoch: int, metrics: Metrics) -> bool:
        if metrics.mean_px < self.best[0]:
            self.best = (metrics.mean_px, epoch)
        per_epoch = (time.perf_counter() - self.started) / epoch
        left = per_epoch * (self.epochs - epoch)
        print(f"epoch {epoch:>3}/{self.epochs}  val {metrics.mean_px:7.3f} px  best {self.best[0]:7.3f} px "
              f"(epoch {self.best[1]})  {per_epoch:5.1f} s/epoch  {_duration(left)} left", flush=True)
        return False


def check_agreement(model: torch.nn.Module, onnx_path: Path, val_set) -> dict:
    """Keypoints of ONNX Runtime against torch (the unfolded trained model) on every validation crop."""
    torch_keypoints = decode(predict_heatmaps(model, val_set.images)).numpy()  # (N, 7, 2)
    onnx_keypoints = ExportedModel(onnx_path).keypoints(val_set.images.numpy())
    distance = np.linalg.norm(onnx_keypoints.astype(np.float64) - torch_keypoints, axis=-1)  # (N, 7)
    truth = val_set.keypoints.numpy()
    max_px = float(distance.max())
    return {"max_px": max_px, "agrees": max_px <= AGREEMENT_PX, "crops": len(val_set),
            "over": int((distance > AGREEMENT_PX).sum()),
            "onnx_mean_px": float(np.linalg.norm(onnx_keypoints - truth, axis=-1).mean())}


def compare_with_search(search: dict, mean_px: float) -> dict:
    searched = search.get("val_mean_px", (search.get("values") or [None])[0])
    if searched is None:
        return {"search_val_mean_px": None, "val_mean_px": mean_px, "relative_difference": None}
    relative = (mean_px - searched) / searched
    return {"search_val_mean_px": searched, "val_mean_px": mean_px, "relative_difference": relative,
            "within_5_percent": abs(relative) <= REPRODUCE_TOLERANCE}


def reproduce_line(comparison: dict) -> str:
    if comparison["search_val_mean_px"] is None:
        return "reproduce: the JSON has no search error to compare with"
    verdict = "reproduced" if comparison["within_5_percent"] else "NOT reproduced (over 5%)"
    return (f"reproduce: search {comparison['search_val_mean_px']:.3f} px, retrain {comparison['val_mean_px']:.3f} px, "
            f"{comparison['relative_difference']:+.1%}: {verdict}")


def final_report(metrics: Metrics, weight_bytes: int, cap: int, agreement: dict, out: Path) -> str:
    per_keypoint = "  ".join(f"{n} {v:.2f}" for n, v in zip(KEYPOINT_NAMES, metrics.per_keypoint_px))
    return "\n".join([
        f"validation: mean {metrics.mean_px:.3f} px, median {metrics.median_px:.3f} px, PCK@1/2/3 px "
        f"{metrics.pck1:.1%} / {metrics.pck2:.1%} / {metrics.pck3:.1%}",
        f"per keypoint (px): {per_keypoint}",
        f"ONNX weights {weight_bytes} bytes ({weight_bytes / BYTES_PER_KB:.1f} KB) of a {cap} byte cap; ONNX Runtime "
        f"vs torch on {agreement['crops']} validation crops: max {agreement['max_px']:.2g} px "
        f"({'agree' if agreement['agrees'] else 'DISAGREE'} within {AGREEMENT_PX} px)",
        f"wrote {out / 'model.pt'}, {out / 'model.onnx'}, {out / 'metrics.json'}",
    ])


def _augment_config(fields: dict) -> AugmentConfig:
    # JSON turns the (low, high) ranges into lists.
    return AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


if __name__ == "__main__":
    sys.exit(main())
