"""Adapt a shipped model to your camera with a few dozen of your own labelled crops (10-100 is typical).

    python runners/adapt.py --data our_crops/ --out adapted/
    python runners/adapt.py --model model/ --data our_crops/ --out adapted/
    python runners/adapt.py --model model/ --data our_crops/ --shared ../shared/cones_dataset --out adapted/

Fine-tunes the model ``runners/retrain.py`` wrote (``--model`` is its folder; without it, the model packaged
with the project, ``models/default/``) on every crop in ``--data`` (any export ``--data`` reads elsewhere) with
augmentation and a short fixed schedule (``--steps``). So as not to forget what the shipped model knew,
batch-norm statistics stay frozen and shared crops are mixed into every step (``--guard``): the data the model
shipped from (as ``metrics.json`` records it, or ``--shared``) when it is on the machine, else the replay set
packaged beside the model (``replay.npz``, a few hundred of those crops); with neither, the weights are held
near the shipped ones instead (L2-SP, ``--penalty``), which adapts less. An int8 model (retrain ``--weights
int8``) is fine-tuned quantization-aware, as its fake-quantized network, and ships as int8 under the same cap.
Before keeping the result it checks that it helps: the same fine-tune runs once per fold of your crops'
frames (``--folds``), each fold held out in turn; if the held-out crops get worse than under the shipped
model, the shipped weights are kept and the command says so. Writes to ``--out`` (a new folder; ``--model``
is never written to) the same three files as retrain: ``model.pt``, ``model.onnx`` (same contract, same
inference, same bytes) and ``metrics.json`` (the cross-validated error before and after, and what the crude
fix, each keypoint's mean offset, would give, judged the same way).
"""
from __future__ import annotations

if __name__ == "__main__":  # first: Ctrl-C while the imports below run is one line and exit 130
    from cli.exits import stop_on_ctrl_c
    stop_on_ctrl_c("adapt")

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

from cli.args import add_data_argument, at_least, doc_parser, non_negative_float, non_negative_int, positive_int
from cli.exits import run
from cli.paths import check_out_dir
from cones.load import describe_sources, load_data, source_list, source_record
from cones.replay import load_replay
from cones.types import ConeSet
from deploy.atomic import replacing, write_json
from deploy.onnx_export import OversizeError, export_onnx
from deploy.packaged import PACKAGED_DIR, REPLAY_FILE, notice, packaged_dir
from objectives.heatmaps import inference_name, parse_inference
from objectives.recipe import RECIPES
from search_space.config import BYTES_PER_KB, Config
from search_space.registry import create_model
from search_space.size import measure
from shipping.adapt import MIN_CROPS, AdaptResult, AdaptSettings, cross_validated_offset, fine_tune, mean_offset
from shipping.agreement import check_agreement
from shipping.quantize import prepare

# Without shared crops to mix in, the pull towards the shipped weights. Mixing shared crops in is the
# default because it adapted better (docs/decisions.md); the penalty is the fallback with neither the shared
# data nor a replay set.
DEFAULT_PENALTY = 0.1
# How adapt keeps the model from forgetting, in the order "auto" tries them (docs/adapting.md measures them).
GUARDS = ("shared", "replay", "penalty")


def save_model(out: Path, cfg: Config, result: AdaptResult, weights: str) -> torch.nn.Module:
    """model.pt of the adapted network (in eval mode, which it returns); ``out`` is new or empty (check_out_dir)."""
    out.mkdir(parents=True, exist_ok=True)
    adapted = result.model.eval()
    state = {k: v.detach().cpu().contiguous() for k, v in adapted.state_dict().items()}
    # int8: the fake-quantized network is what was fine-tuned (retrain's int8 model.pt holds it under the same key)
    saved = {"state_dict": state} if weights == "float32" else {"weights": "int8", "int8_state_dict": state}
    with replacing(out / "model.pt") as tmp:
        torch.save({"config": cfg.to_dict(), **saved, "metrics": result.after.to_dict()}, tmp)
    return adapted


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.model is None:
        try:
            args.model = packaged_dir()
        except FileNotFoundError as error:
            raise SystemExit(f"adapt: {error}") from None
        print(notice(args.model))
    shipped_dir, out = Path(args.model), Path(args.out)
    cfg, model, shipped_metrics, weights = read_shipped(shipped_dir)
    # Never over the shipped model, never into the crops' folder.
    check_out_dir(out, force=args.force, inputs=[shipped_dir, *source_list(args.data)])
    new = read_crops(args)
    guard, shared, shared_source = forgetting_guard(args, shipped_dir, shipped_metrics)
    recipe = RECIPES.get(shipped_metrics.get("recipe", {}).get("name", "ship"), RECIPES["ship"])
    inference = shipped_inference(shipped_metrics)
    settings = AdaptSettings(steps=args.steps, folds=args.folds, augmentation=recipe.augmentation,
                             penalty=args.penalty if guard == "penalty" else 0.0)
    print(f"adapting {shipped_dir / 'model.pt'} ({cfg.family} w{cfg.width} d{cfg.depth}, {weights}) on {len(new)} "
          f"crops of {describe_sources(args.data)} ({len(set(new.frames))} frames), {settings.steps} steps"
          f"{' quantization-aware' if weights == 'int8' else ''}, checked by {settings.folds}-fold cross-validation "
          "over frames"
          + (f", {len(shared)} shared crops mixed in ({shared_source})" if shared is not None
             else f", L2-SP penalty {settings.penalty}"))
    try:
        result = fine_tune(model, cfg, new, shared=shared, settings=settings, seed=args.seed, threads=args.threads,
                           **inference)
    except ValueError as error:  # crops from a single frame
        raise SystemExit(f"adapt: {describe_sources(args.data)}: {error}") from None
    offset = mean_offset(model, cfg, new, **inference)
    crude = cross_validated_offset(model, cfg, new, folds=settings.folds, seed=args.seed, **inference)
    report(result, crude)

    adapted = save_model(out, cfg, result, weights)
    cap = int(shipped_metrics.get("max_bytes", measure(cfg, weights=weights).weight_bytes))
    try:
        exported = export_onnx(adapted, cfg, out / "model.onnx", max_bytes=cap, weights=weights, **inference)
    except OversizeError as error:
        raise SystemExit(f"adapt: {error}") from None
    agreement = check_agreement(adapted, out / "model.onnx", new, weights=weights, **inference)
    metrics = {
        "config": cfg.to_dict(), "mode": "adapted", "shipped_model": str(shipped_dir),
        "data": source_record(args.data), "crops": len(new), "frames": len(set(new.frames)),
        "guard": guard, "shared": shared_source,
        **result_record(result, settings), "crossval_mean_offset_fix": crude, "mean_offset_px": offset.tolist(),
        "inference": inference_name(**inference), "weights": weights,
        "weight_bytes": exported.weight_bytes, "weight_kb": exported.weight_bytes / BYTES_PER_KB, "max_bytes": cap,
        "onnx_vs_torch_max_px": agreement["max_px"], "onnx_agrees": agreement["agrees"],
        "command": "python " + " ".join([sys.argv[0] if argv is None else "runners/adapt.py",
                                         *(sys.argv[1:] if argv is None else argv)]),
    }
    write_json(out / "metrics.json", metrics)
    print(f"wrote {out / 'model.pt'}, {out / 'model.onnx'} ({exported.weight_bytes} bytes), {out / 'metrics.json'}")
    if not agreement["agrees"]:
        raise SystemExit(f"adapt: ONNX Runtime and torch disagree by {agreement['max_px']:.3g} px; do not ship "
                         f"{out / 'model.onnx'}")
    return 0


def read_crops(args) -> ConeSet:
    """The team's labelled crops."""
    try:
        new = load_data(args.data)
    except ValueError as error:
        raise SystemExit(f"adapt: {error}") from None
    if len(new) < MIN_CROPS:
        raise SystemExit(f"adapt: {describe_sources(args.data)} has {len(new)} usable labelled crops; adapting needs at least "
                         f"{MIN_CROPS} (label a few more of your own crops)")
    return new


def forgetting_guard(args, shipped_dir: Path, shipped_metrics: dict) -> tuple[str, ConeSet | None, str | list | None]:
    """(guard, shared crops to mix in or None, where they came from): with ``--guard auto``, the data the model
    shipped from if it is on this machine (``--shared``, else as metrics.json records it), else the replay set
    packaged beside the model, else L2-SP."""
    replay_path = shipped_dir / REPLAY_FILE
    shared_dir = args.shared or (shipped_data(shipped_metrics) if args.guard in ("auto", "shared") else None)
    guard = args.guard
    if guard == "auto":
        guard = "shared" if shared_dir else "replay" if replay_path.is_file() else "penalty"
        if guard == "replay":
            print(f"the data the model shipped from is not on this machine: mixing in its replay set {replay_path}")
    try:
        if guard == "shared":
            if not shared_dir:
                raise SystemExit(f"adapt: --guard shared needs the data the model shipped from, and "
                                 f"{shipped_dir / 'metrics.json'} names none on this machine; pass --shared DIR")
            return guard, load_data(shared_dir), source_record(shared_dir)
        if guard == "replay":
            if not replay_path.is_file():
                raise SystemExit(f"adapt: --guard replay needs {replay_path} (runners/package_model.py writes it)")
            return guard, load_replay(replay_path), str(replay_path)
    except ValueError as error:
        raise SystemExit(f"adapt: {error}") from None
    return guard, None, None


def report(result: AdaptResult, crude: dict) -> None:
    before, after = result.before, result.after
    if result.kept_shipped:
        print(f"cross-validated, the fine-tune did not beat the shipped model on your crops ({before.mean_px:.3f} "
              f"-> {result.tried.mean_px:.3f} px held out): keeping the shipped weights")
    else:
        print(f"your crops, each held out once (cross-validated): {before.mean_px:.3f} px -> {after.mean_px:.3f} px, "
              f"PCK@2 {before.pck2:.1%} -> {after.pck2:.1%}")
    print(f"(the crude fix, each keypoint's mean offset subtracted, would give {crude['mean_px']:.3f} px)")


def result_record(result: AdaptResult, settings: AdaptSettings) -> dict:
    """What metrics.json says of the fine-tune: the cross-validated error before and after, the settings."""
    return {"crossval_before": result.before.to_dict(), "crossval_after": result.after.to_dict(),
            "crossval_fine_tune": result.tried.to_dict(), "kept_shipped_weights": result.kept_shipped,
            "folds": [{"crops": n, "before_px": b, "after_px": a} for n, b, a in result.folds],
            "settings": {**asdict(replace(settings, augmentation=None)), "augmentation": asdict(settings.augmentation)}}


at_least_two = at_least(int, 2, strict=False)
DEFAULTS = AdaptSettings()


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.add_argument("--model", type=Path, metavar="DIR",
                        help=f"the folder retrain.py wrote (model.pt; default: the packaged model, {PACKAGED_DIR})")
    add_data_argument(parser, "your labelled crops", required=True)
    parser.add_argument("--out", required=True, metavar="DIR", help="a new folder for the adapted model")
    parser.add_argument("--force", action="store_true", help="write into --out even if it holds files")
    parser.add_argument("--shared", action="append", type=Path, metavar="DIR",
                        help="the data the model shipped from, mixed into every step (again for more sources)")
    parser.add_argument("--steps", type=positive_int, default=DEFAULTS.steps,
                        help=f"fine-tuning steps (default {DEFAULTS.steps})")
    parser.add_argument("--folds", type=at_least_two, default=DEFAULTS.folds,
                        help=f"cross-validation folds over your crops' frames (default {DEFAULTS.folds})")
    parser.add_argument("--guard", choices=("auto", *GUARDS), default="auto",
                        help="what keeps the model from forgetting: shared crops mixed in (the shipped data), the "
                             "packaged replay set mixed in, or L2-SP (default auto: the first of these at hand)")
    parser.add_argument("--penalty", type=non_negative_float, default=DEFAULT_PENALTY,
                        help=f"L2-SP weight, with --guard penalty (default {DEFAULT_PENALTY})")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--threads", type=positive_int, help="torch threads (default: torch's choice)")
    return parser


def parse_args(argv: list[str] | None):
    parser = build_parser()
    return parser.parse_args(argv)


def read_shipped(folder: Path) -> tuple[Config, torch.nn.Module, dict, str]:
    """(config, model, metrics.json, weight format). An int8 model is its fake-quantized network (batch norm
    folded, calibrated input ranges), which fine-tunes quantization-aware."""
    path = folder / "model.pt"
    if not path.is_file():
        raise SystemExit(f"adapt: --model {folder}: no model.pt there; pass the folder runners/retrain.py wrote")
    try:
        saved = torch.load(path, weights_only=True)
        cfg = Config.from_dict(saved["config"])
        weights = saved.get("weights", "float32")
        if weights == "int8":
            model = prepare(create_model(cfg))
            model.load_state_dict(saved["int8_state_dict"])
        else:
            model = create_model(cfg)
            model.load_state_dict(saved["state_dict"])
    except Exception as error:  # a foreign or damaged file: say which, without a traceback
        detail = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
        raise SystemExit(f"adapt: {path} is not a model retrain.py wrote ({type(error).__name__}: {detail})") from None
    metrics_path = folder / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    except json.JSONDecodeError:
        metrics = {}
    return cfg, model.eval(), metrics, weights


def shipped_data(metrics: dict) -> str | None:
    """The export the shipped model was trained on, when retrain recorded one that is still there."""
    data = (metrics.get("data") or {}).get("data")
    if data and data != "synthetic" and all(path.exists() for path in source_list(data)):
        print(f"mixing in the data the model shipped from: {describe_sources(data)} (--shared to choose another)")
        return data
    return None


def shipped_inference(metrics: dict) -> dict:
    """The shipped model's flip averaging and decoder, so the adapted model reads heatmaps the same way."""
    return parse_inference(str(metrics.get("inference", "parabola")))


if __name__ == "__main__":
    sys.exit(run(main, "adapt"))
