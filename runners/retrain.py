"""Retrain an exported config from scratch and write the model a team ships.

    python runners/retrain.py --config best.json --data ../shared/cones_dataset --out model/
    python runners/retrain.py --config best.json --data ../shared/cones_dataset --out heldout/ --val-teams tuwr
    python runners/retrain.py --config best.json --data ../shared/cones_dataset --out model8/ --weights int8
    python runners/retrain.py --config best.json --data ../shared/cones_dataset --out repro/ --reproduce

By default (ship mode) it trains on every labelled crop of every team with the shipped recipe and the epoch
budget chosen on held-out runs; the figures it prints are then the fit on the training crops. Hold data out
to measure. Writes model.pt, model.onnx (input image [N, 3, 64, 48] RGB in [0, 1]; output keypoints
[N, 7, 2] in input pixels) and metrics.json. The ONNX contract, int8 and the recipe: docs/shipping.md.
"""
from __future__ import annotations

if __name__ == "__main__":  # first: Ctrl-C while the imports below run is one line and exit 130
    from cli.exits import stop_on_ctrl_c
    stop_on_ctrl_c("retrain")

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from cli.args import (add_data_argument, add_val_teams_argument, doc_parser, non_negative_float, non_negative_int,
                      positive_float, positive_int)
from cli.exits import UserError, run
from cli.paths import check_out_dir
from cones.augment import AugmentConfig
from cones.coco import DEFAULT_MARGIN
from cones.load import data_flags, load_data, source_list, source_record
from cones.splits import split
from cones.types import KEYPOINT_NAMES
from deploy.atomic import replacing, write_json
from deploy.onnx_export import OversizeError, export_onnx
from objectives.heatmaps import inference_name
from objectives.heldout_runs import runs_by_epochs
from objectives.metrics import Metrics
from objectives.recipe import RECIPES, Recipe
from objectives.train import train
from search_space.cap import fits, max_bytes
from search_space.config import BYTES_PER_KB, Config, DEFAULT_MAX_KB, WEIGHT_FORMATS
from search_space.size import measure
from shipping.agreement import agreement_text, check_agreement
from shipping.quantize import CALIBRATION_CROPS, QuantizeResult, quantize
from shipping.record import DEFAULT_QAT_EPOCHS, held_out, read_record
from studies.attrs import SEEDS_ATTR

DEFAULT_PATIENCE = 15
AGREEMENT_CROPS = 512  # ship mode checks ONNX Runtime against torch on this many training crops
REPRODUCE_TOLERANCE = 0.05


@dataclass(frozen=True)
class TrainingPlan:
    """How retrain trains (``training_plan``): the recipe's way, or the search's own with --reproduce."""

    epochs: int
    epochs_chosen_by: str  # what chose the budget, for metrics.json
    seed: int
    schedule: str
    augmentation: AugmentConfig | None  # None: train()'s default
    keep_best: bool  # keep the best validation epoch's weights
    patience: int | None  # epochs without improvement before stopping; None: no early stopping
    recipe: Recipe | None  # None when reproducing the search
    recipe_name: str
    weights: str = "float32"
    qat_epochs: int = 0  # int8: quantization-aware fine-tuning after calibration


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    record = read_record(args.config)
    check_out_dir(args.out, force=args.force, inputs=[Path(args.config), *source_list(args.data)])
    cfg = Config.from_dict(record["config"])
    plan = training_plan(args, record)
    cap, size = checked_cap(args, record, cfg, plan.weights)
    data_split = dict(record.get("data") or {})
    data_dir, data = read_data(args, data_split)
    holdout = held_out(data_split, val_teams=args.val_teams, search_split=args.reproduce or args.search_split)
    train_set, val_set = data, None
    if holdout is not None:
        try:
            train_set, val_set = split(data, **holdout)
        except ValueError as error:
            raise SystemExit(f"retrain: {error}") from None
    if plan.recipe is not None and not args.reproduce and args.epochs is None:
        epochs, chosen_by = ship_epochs(cfg, plan.recipe, data_dir, data)
        plan = replace(plan, epochs=epochs, epochs_chosen_by=chosen_by)

    print(f"{cfg}\n{size.weight_bytes} bytes ({size.kb:.1f} KB) of {plan.weights} weights, {size.params:,} "
          f"parameters, {size.macs / 1e6:.1f} M MACs per crop; " + describe_holdout(holdout, train_set, val_set))
    print(describe_plan(plan, args.reproduce, val_set is not None))
    recipe = plan.recipe
    result = train(cfg, train_set, val_set, plan.epochs, seed=plan.seed, augmentation=plan.augmentation,
                   on_epoch=ProgressPrinter(plan.epochs),
                   threads=args.threads, schedule=plan.schedule, keep_best=plan.keep_best and val_set is not None,
                   patience=plan.patience if val_set is not None else None,
                   val_by_team=len((holdout or {}).get("val_teams") or ()) > 1,
                   **({k: v for k, v in recipe.train_kwargs().items() if k != "augmentation"} if recipe else {}))
    if result.status == "diverged":
        raise SystemExit(f"retrain: training diverged ({result.reason}); lower lr in {args.config} and retry")
    quantized = int8_fine_tune(cfg, result, plan, train_set, val_set) if plan.weights == "int8" else None

    out = Path(args.out)
    inference = {"flip_test": recipe.flip_test if recipe else False, "decoder": recipe.decoder if recipe else "parabola"}
    exported = write_model(out, result, cfg, cap, inference, quantized)
    checked = val_set if val_set is not None else train_set.subset(range(min(len(train_set), AGREEMENT_CROPS)))
    shipped = quantized if quantized is not None else result
    agreement = check_agreement(shipped.model, out / "model.onnx", checked, weights=plan.weights, **inference)
    metrics = metrics_record(cfg, result, exported, agreement, plan, inference, size=size, cap=cap,
                             data={"data": source_record(data_dir), **(holdout or {}),
                                   "teams": sorted(set(train_set.teams)), "train_crops": len(train_set),
                                   "val_crops": len(val_set) if val_set is not None else 0},
                             search=record.get("search", {}), measured=val_set is not None, argv=argv,
                             quantized=quantized)
    if args.reproduce:
        metrics["reproduce"] = compare_with_search(metrics["search"], shipped.metrics.mean_px, plan.seed)
    write_json(out / "metrics.json", metrics)

    print(final_report(shipped.metrics, exported.weight_bytes, cap, agreement, out, val_set is not None))
    if args.reproduce:
        print(reproduce_line(metrics["reproduce"]))
    if not agreement["agrees"]:
        raise SystemExit(f"retrain: ONNX Runtime and torch disagree ({agreement_text(agreement)}) on the validation "
                         f"set; do not ship {out / 'model.onnx'}")
    return 0


def int8_fine_tune(cfg: Config, result, plan: TrainingPlan, train_set, val_set) -> QuantizeResult:
    """The trained float model quantized to int8 and fine-tuned for ``plan.qat_epochs`` (0: post-training
    quantization only), with the plan's seed and augmentation."""
    print(f"int8: calibrating on {min(len(train_set), CALIBRATION_CROPS)} training crops, then "
          f"{plan.qat_epochs} epochs of quantization-aware fine-tuning", flush=True)
    quantized = quantize(result.model, cfg, train_set, val_set, plan.qat_epochs, seed=plan.seed,
                         augmentation=plan.augmentation)
    if quantized.status == "diverged":
        raise SystemExit(f"retrain: quantization-aware fine-tuning diverged ({quantized.reason}); retry with "
                         "--qat-epochs 0 (post-training quantization) or lower lr in the config")
    scored = "validation" if val_set is not None else "training crops"
    print(f"int8 ({scored}): {result.metrics.mean_px:.3f} px in float32, {quantized.post_training.mean_px:.3f} px "
          f"after calibration, {quantized.metrics.mean_px:.3f} px kept (fine-tuning epoch {quantized.best_epoch}; "
          f"{quantized.seconds:.0f} s)", flush=True)
    return quantized


def checked_cap(args: argparse.Namespace, record: dict, cfg: Config, weights: str = "float32"):
    """The cap (``--max-kb``, else the study's) and the config's exact size in ``weights``; a config over it is
    refused here, before anything trains."""
    cap = max_bytes(args.max_kb) if args.max_kb is not None else int(record.get("max_bytes", max_bytes(DEFAULT_MAX_KB)))
    fit = fits(cfg, cap, weights)
    size = fit.size
    if not fit.ok:
        raise SystemExit(f"retrain: the config has {fit.error}; it could not ship, so it is not trained. "
                         f"Shrink width/depth in {args.config} or export a smaller trial (export.py --max-kb)")
    return cap, size


def read_data(args: argparse.Namespace, data_split: dict):
    """(data sources or None, crops): ``--data``, or with ``--reproduce`` the search's own data."""
    data_dir = args.data
    searched_on = data_split.get("data", "synthetic")
    if data_dir is None and args.reproduce and searched_on not in (None, "synthetic"):
        data_dir = searched_on
        print(f"--reproduce: using the search's data {data_flags(data_dir)}")
    elif data_dir is None and searched_on not in (None, "synthetic"):
        print(f"note: the search ran on {searched_on}; pass {data_flags(searched_on)} to retrain on it")
    try:
        return data_dir, load_data(data_dir, margin=args.margin)
    except ValueError as error:  # a missing folder, a file that is not an export
        raise SystemExit(f"retrain: {error}") from None


def describe_plan(plan: TrainingPlan, reproduce: bool, measured: bool) -> str:
    int8 = (f"; then int8: calibration and {plan.qat_epochs} epochs of quantization-aware fine-tuning"
            if plan.weights == "int8" else "")
    return (f"training {plan.epochs} epochs ({plan.epochs_chosen_by}), seed {plan.seed}, "
            f"{plan.schedule} schedule, recipe {plan.recipe_name}, "
            + ("last epoch's weights (reproducing the search)" if reproduce
               else "last epoch's weights (ship mode: nothing held out)" if not measured
               else f"early stopping after {plan.patience} epochs without improvement" if plan.patience
               else "best epoch's weights, no early stopping") + int8)


def write_model(out: Path, result, cfg: Config, cap: int, inference: dict, quantized: QuantizeResult | None = None):
    """model.pt (batch norm unfolded, to fine-tune) and model.onnx (folded, checked against the cap). int8: model.pt
    also holds the fake-quantized network (``int8_state_dict``; load it into ``shipping.quantize.prepare(
    create_model(cfg))``), and model.onnx is its int8 QDQ model."""
    out.mkdir(parents=True, exist_ok=True)
    model = result.model.eval()
    saved = {"config": cfg.to_dict(), "state_dict": _cpu_state(model), "metrics": result.metrics.to_dict()}
    if quantized is not None:
        saved.update(weights="int8", int8_state_dict=_cpu_state(quantized.model), int8_metrics=quantized.metrics.to_dict())
    with replacing(out / "model.pt") as tmp:
        torch.save(saved, tmp)
    shipped, weights = (model, "float32") if quantized is None else (quantized.model, "int8")
    try:
        return export_onnx(shipped, cfg, out / "model.onnx", max_bytes=cap, weights=weights, **inference)
    except OversizeError as error:
        raise SystemExit(f"retrain: {error}") from None


def int8_record(result, quantized: QuantizeResult) -> dict:
    """How the int8 model came about: the float model's figures, after calibration, each fine-tuning epoch."""
    return {"float32": result.metrics.to_dict(), "post_training": quantized.post_training.to_dict(),
            "qat_epochs": quantized.epochs, "qat_history": quantized.history, "kept_epoch": quantized.best_epoch,
            "qat_seconds": round(quantized.seconds, 1)}


def _cpu_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def metrics_record(cfg: Config, result, exported, agreement: dict, plan: TrainingPlan, inference: dict, *, size, cap: int,
                   data: dict, search: dict, measured: bool, argv: list[str] | None,
                   quantized: QuantizeResult | None = None) -> dict:
    """What metrics.json holds: the figures (of the model shipped: the int8 one under int8), the exact bytes, how
    it was trained and on what."""
    recipe = plan.recipe
    shipped = quantized.metrics if quantized is not None else result.metrics
    return {
        "config": cfg.to_dict(),
        "mode": "measure" if measured else "ship",
        # ship mode has no validation set: these are the training crops' figures (a fit check)
        "val" if measured else "train_fit": shipped.to_dict(),
        "val_per_keypoint_px": dict(zip(KEYPOINT_NAMES, shipped.per_keypoint_px)),
        "val_onnx_mean_px": agreement["onnx_mean_px"],
        "onnx_vs_torch_max_px": agreement["max_px"],
        "onnx_agrees": agreement["agrees"],
        "onnx_agreement": agreement,
        "weights": plan.weights,
        "weight_bytes": exported.weight_bytes,  # the ONNX file's weight initializers, in the weight format above
        "weight_kb": exported.weight_bytes / BYTES_PER_KB,
        "float32_weight_bytes": measure(cfg).weight_bytes,
        "int8": int8_record(result, quantized) if quantized is not None else None,
        "onnx_constant_bytes": exported.constant_bytes,
        "max_bytes": cap,
        "params": exported.params,
        "macs": size.macs,
        "status": result.status,
        "epochs": result.epochs,
        "epoch_budget": {"epochs": plan.epochs, "chosen_by": plan.epochs_chosen_by},
        "recipe": {"name": plan.recipe_name, **(recipe.to_dict() if recipe else {})},
        "inference": inference_name(**inference),
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.train_seconds, 1),
        "history": result.history,
        "seed": plan.seed,
        "schedule": plan.schedule,
        "keep_best": plan.keep_best,
        "patience": plan.patience,
        "augmentation": asdict(plan.augmentation) if plan.augmentation is not None else "train default",
        "data": data,
        "search": search,
        "command": "python " + " ".join([sys.argv[0] if argv is None else "runners/retrain.py",
                                         *(sys.argv[1:] if argv is None else argv)]),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.add_argument("--config", required=True, metavar="FILE.json",
                        help="JSON written by runners/export.py (or edited from one)")
    add_data_argument(parser, "Supervisely export or COCO .json (default: synthetic cones)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="new folder for model.pt, model.onnx, metrics.json")
    parser.add_argument("--force", action="store_true", help="write into --out even if it holds files")
    parser.add_argument("--weights", choices=WEIGHT_FORMATS, metavar="FORMAT",
                        help="float32 or int8 (adds quantization-aware fine-tuning); default: the JSON's, else float32")
    parser.add_argument("--flip-test", action="store_true",
                        help="average with the mirror image inside the graph (lower error, twice the latency)")

    measure = parser.add_argument_group("measure instead of ship (early stopping on the held-out error)")
    add_val_teams_argument(measure, "hold these teams out (space- or comma-separated); none: a frame split",
                           optional_value=True)
    measure.add_argument("--search-split", action="store_true",
                         help="hold out what the search validated on (the JSON's split)")
    measure.add_argument("--reproduce", action="store_true",
                         help="repeat the search's run: the trial's split, epochs, seed, schedule")

    advanced = parser.add_argument_group("advanced")
    advanced.add_argument("--epochs", type=positive_int, metavar="N",
                          help="epoch budget (default: chosen on held-out runs; the trial's with --reproduce)")
    advanced.add_argument("--recipe", default="ship", choices=sorted(RECIPES), metavar="NAME",
                          help="training and inference recipe, objectives/recipe.py (default ship)")
    advanced.add_argument("--seed", type=non_negative_int, metavar="N", help="training seed (default: the JSON's)")
    advanced.add_argument("--patience", type=non_negative_int, default=DEFAULT_PATIENCE, metavar="N",
                          help=f"epochs without a better validation error before stopping (default "
                               f"{DEFAULT_PATIENCE}; 0: off)")
    advanced.add_argument("--max-kb", type=positive_float, metavar="KB",
                          help="size cap (default: the study's, from the JSON)")
    advanced.add_argument("--qat-epochs", type=non_negative_int, metavar="N",
                          help=f"int8: quantization-aware epochs (default {DEFAULT_QAT_EPOCHS}; 0 with --reproduce)")
    advanced.add_argument("--margin", type=non_negative_float, default=DEFAULT_MARGIN, metavar="M",
                          help=f"COCO full frames: box margin per side when cutting crops (default {DEFAULT_MARGIN})")
    advanced.add_argument("--threads", type=positive_int, metavar="N", help="torch threads (default: torch's choice)")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.search_split and args.val_teams is not None:
        parser.error("--search-split and --val-teams both choose what is held out; give one")
    return args


def describe_holdout(holdout: dict | None, train_set, val_set) -> str:
    if holdout is None:
        teams = ", ".join(sorted(set(train_set.teams)))
        return f"ship mode: all {len(train_set)} crops train ({teams}), nothing held out"
    held = ("teams " + ", ".join(holdout["val_teams"]) if holdout["val_teams"]
            else f"{holdout['val_fraction']:.0%} of the frames")
    return f"{len(train_set)} training and {len(val_set)} validation crops ({held})"


def ship_epochs(cfg: Config, recipe: Recipe, data_dir, data) -> tuple[int, str]:
    """The epoch budget for ship mode and what chose it: among the leave-one-team-out runs cached by
    ``benchmarks/generalisation.py`` for this config and data whose recipe differs from ``recipe`` at most in
    its epochs, the budget with the lowest mean held-out error over teams (every team, same seeds); without
    such runs, the recipe's own budget."""
    if data_dir is None:
        return recipe.epochs, "the recipe's budget (no held-out runs on synthetic data)"
    runs = runs_by_epochs(cfg, recipe, data.fingerprint())
    teams = sorted(set(data.teams))
    scores = {}
    for epochs, folds in runs.items():
        by_seed = {}
        for fold in folds:
            by_seed.setdefault(fold["seed"], {})[fold["team"]] = fold["scores"][recipe.inference]["mean_px"]
        complete = [np.mean([errors[t] for t in teams]) for errors in by_seed.values() if set(errors) >= set(teams)]
        if complete:
            scores[epochs] = (float(np.mean(complete)), len(complete))
    if not scores:
        return recipe.epochs, ("the recipe's budget, chosen on leave-one-team-out runs of the shared data "
                               "(docs/decisions.md); no cached held-out runs of this config")
    epochs = min(scores, key=lambda e: scores[e][0])
    tried = ", ".join(f"{e}: {scores[e][0]:.3f} px ({scores[e][1]} seeds)" for e in sorted(scores))
    return epochs, f"lowest leave-one-team-out error of the cached runs of this config ({tried})"


def training_plan(args: argparse.Namespace, record: dict) -> TrainingPlan:
    """Epochs, seed, schedule, augmentation, weight averaging and early stopping: the recipe's, or the
    search's own with --reproduce; and the weight format (``--weights``, else the JSON's, else float32) with its
    quantization-aware epochs (none when reproducing: the search scores int8 after calibration only)."""
    weights = args.weights or record.get("weights", "float32")
    if args.qat_epochs is not None and weights != "int8":
        raise UserError(f"--qat-epochs {args.qat_epochs} fine-tunes an int8 model, and the weights are {weights}; add "
                        "--weights int8 or leave --qat-epochs out")
    qat_epochs = args.qat_epochs if args.qat_epochs is not None else 0 if args.reproduce else DEFAULT_QAT_EPOCHS
    return replace(_epochs_plan(args, record), weights=weights, qat_epochs=qat_epochs if weights == "int8" else 0)


def _epochs_plan(args: argparse.Namespace, record: dict) -> TrainingPlan:
    """The plan in float32 weights (``training_plan`` sets the weight format)."""
    search = record.get("search", {})
    seed = args.seed if args.seed is not None else int(record.get("seed", search.get("seed", 0)))
    if args.reproduce:
        if args.epochs is None and "epochs" not in search:
            raise SystemExit(f"retrain: --reproduce needs the trial's epochs, and {args.config} has no search.epochs; "
                             "pass --epochs")
        augmentation = search.get("augmentation")
        return TrainingPlan(
            epochs=args.epochs or int(search["epochs"]), seed=seed, schedule=search.get("schedule", "cosine"),
            augmentation=_augment_config(augmentation) if isinstance(augmentation, dict) else None,
            keep_best=False, patience=None, recipe=None, recipe_name="the search's",
            epochs_chosen_by="--epochs" if args.epochs else "the search's trial")
    recipe = RECIPES[args.recipe]
    if args.flip_test:
        recipe = recipe.replace(flip_test=True)
    return TrainingPlan(
        epochs=args.epochs or recipe.epochs, seed=seed, schedule="cosine", augmentation=recipe.augmentation,
        keep_best=True, patience=args.patience or None, recipe=recipe, recipe_name=args.recipe,
        epochs_chosen_by="--epochs" if args.epochs else "the recipe's budget")


class ProgressPrinter:
    """The ``on_epoch`` callback: one line per epoch with the error, the best so far and the time left."""

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.started = time.perf_counter()
        self.best = (math.inf, 0)

    def __call__(self, epoch: int, metrics: Metrics | None) -> bool:
        per_epoch = (time.perf_counter() - self.started) / epoch
        left = per_epoch * (self.epochs - epoch)
        if metrics is None:  # ship mode: nothing held out to score
            print(f"epoch {epoch:>3}/{self.epochs}  {per_epoch:5.1f} s/epoch  {_duration(left)} left", flush=True)
            return False
        if metrics.mean_px < self.best[0]:
            self.best = (metrics.mean_px, epoch)
        print(f"epoch {epoch:>3}/{self.epochs}  val {metrics.mean_px:7.3f} px  best {self.best[0]:7.3f} px "
              f"(epoch {self.best[1]})  {per_epoch:5.1f} s/epoch  {_duration(left)} left", flush=True)
        return False


def compare_with_search(search: dict, mean_px: float, seed: int | None = None) -> dict:
    """The retrain's error against the search's: a trial scored by two seeds' mean is compared with its run of
    the retrain's seed (the study's seed or the next), the run the retrain repeats."""
    searched = search.get("val_mean_px", (search.get("values") or [None])[0])
    by_seed, first = search.get(SEEDS_ATTR), search.get("seed", 0)
    if by_seed and seed is not None and 0 <= seed - first < len(by_seed):
        searched = by_seed[seed - first]
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


def final_report(metrics: Metrics, weight_bytes: int, cap: int, agreement: dict, out: Path,
                 validated: bool = True) -> str:
    per_keypoint = "  ".join(f"{n} {v:.2f}" for n, v in zip(KEYPOINT_NAMES, metrics.per_keypoint_px))
    what = "validation" if validated else "training crops (fit only; measure with --val-teams)"
    crops = "validation" if validated else "training"
    return "\n".join([
        f"{what}: mean {metrics.mean_px:.3f} px, median {metrics.median_px:.3f} px, PCK@1/2/3 px "
        f"{metrics.pck1:.1%} / {metrics.pck2:.1%} / {metrics.pck3:.1%}",
        f"per keypoint (px): {per_keypoint}",
        f"ONNX weights {weight_bytes} bytes ({weight_bytes / BYTES_PER_KB:.1f} KB) of a {cap} byte cap; ONNX Runtime "
        f"vs torch on {agreement['crops']} {crops} crops: {agreement_text(agreement)}",
        f"wrote {out / 'model.pt'}, {out / 'model.onnx'}, {out / 'metrics.json'}",
    ])


def _augment_config(fields: dict) -> AugmentConfig:
    # JSON turns the (low, high) ranges into lists.
    return AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


if __name__ == "__main__":
    sys.exit(run(main, "retrain"))
