"""The model that comes with the project: ``models/default/`` beside the packages, found from any working
directory, so that a team on a fresh clone can ``predict`` and ``adapt`` before it has trained anything.

    models/default/model.onnx    the shipped model (retrain's contract), what predict runs without --model
    models/default/model.pt      its state dict, what adapt fine-tunes without --model
    models/default/metrics.json  retrain's record of it (config, recipe, data by team and count, bytes)
    models/default/replay.npz    a few hundred of the shared crops it was trained on (``cones.replay``), which
                                 adapt mixes in when that data is not on the machine
    models/default/heldout.json  its config's leave-one-team-out figures, with the command that measured them
    models/default/MODEL.md      the model card, written by ``model_card`` from the files above

``runners/package_model.py`` writes the folder from a retrain output. No torch here: predict imports this.
"""
from __future__ import annotations

import json
from pathlib import Path

PACKAGED_DIR = Path(__file__).resolve().parents[1] / "models" / "default"
REPLAY_FILE = "replay.npz"
HELDOUT_FILE = "heldout.json"
CARD_FILE = "MODEL.md"
SHIPPED_CONFIG = "benchmarks/configs/shipped.json"  # the config the README ships (chosen on five cameras)
REBUILD = ("python runners/retrain.py --config " + SHIPPED_CONFIG + " --data ../shared/cones_dataset "
           "--data ../shared/cones_more --out runs/default-model --threads 1\n"
           "python runners/package_model.py --model runs/default-model --data ../shared/cones_dataset "
           "--data ../shared/cones_more --force")


def packaged_dir() -> Path:
    """``models/default`` of this checkout; a one-line error when it is missing (a partial copy of the project)."""
    if not (PACKAGED_DIR / "model.onnx").is_file():
        raise FileNotFoundError(f"no packaged model at {PACKAGED_DIR} (model.onnx missing); pass --model, or "
                                f"rebuild it: {REBUILD.splitlines()[0]}")
    return PACKAGED_DIR


def notice(path: Path) -> str:
    """The one line predict and adapt print when they use the packaged model."""
    return f"using the packaged model {path} (trained on the shared cameras; --model to use your own)"


def model_card(metrics: dict, heldout: dict | None = None, replay: dict | None = None) -> str:
    """MODEL.md from the packaged model's metrics.json (and heldout.json, and the replay set's team counts)."""
    cfg = metrics["config"]
    data = metrics.get("data") or {}
    teams = data.get("team_crops") or {t: None for t in data.get("teams", [])}
    recipe = metrics.get("recipe") or {}
    fit = metrics.get("train_fit") or metrics.get("val") or {}
    lines = [
        "# The packaged model",
        "",
        f"U-Net w{cfg['width']} d{cfg['depth']} ({cfg['family']}, batch norm {cfg['batch_norm']}, {cfg['head']} head, "
        f"{cfg['loss']} loss): the config of `{SHIPPED_CONFIG}`, trained in {metrics.get('mode', '?')} mode on every "
        "shared crop. This file is written by `runners/package_model.py` from `metrics.json`; do not edit it by hand.",
        "",
        "| | |",
        "| --- | --- |",
        f"| weights | {metrics['weights']}, {metrics['weight_bytes']:,} bytes ({metrics['weight_kb']:.1f} KB) of a "
        f"{metrics['max_bytes']:,}-byte cap; {metrics['params']:,} parameters, {metrics['macs'] / 1e6:.1f} M MACs a crop |",
        f"| input / outputs | image float32 [N, 3, 64, 48] RGB in [0, 1]; keypoints [N, 7, 2] (x, y input pixels), "
        "heatmaps [N, 7, 64, 48] |",
        f"| inference | {metrics.get('inference')} |",
        f"| recipe | {recipe.get('name')}: {metrics.get('epochs')} epochs "
        f"({(metrics.get('epoch_budget') or {}).get('chosen_by', '')}), seed {metrics.get('seed')}, "
        f"{metrics.get('schedule')} schedule; {metrics.get('train_seconds', 0) / 60:.0f} min of training (wall clock, "
        "the command below) |",
        f"| data | {data.get('train_crops')} crops: " + ", ".join(
            f"{team} {count}" if count is not None else team for team, count in teams.items())
        + f" ({', '.join(f'`{s}`' for s in _sources(data.get('data')))}) |",
        f"| fit on its training crops | {fit.get('mean_px', float('nan')):.3f} px, PCK@2 {fit.get('pck2', float('nan')):.1%} "
        "(argmax + parabola, as retrain scores the fit; not an estimate for a new camera: see below) |",
        f"| ONNX Runtime vs torch | max {metrics.get('onnx_vs_torch_max_px', float('nan')):.2g} px apart |",
    ]
    if replay:
        lines.append(f"| replay set (`{REPLAY_FILE}`) | {sum(replay.values())} crops: "
                     + ", ".join(f"{t} {n}" for t, n in replay.items()) + " |")
    lines += ["", "## A new camera: leave-one-team-out", ""]
    if heldout:
        teams_measured = list(heldout["teams"])
        lines += [heldout["what"], "",
                  "| " + " | ".join(["held out", *teams_measured, "mean"]) + " |",
                  "| " + " | ".join(["---"] + ["---:"] * (len(teams_measured) + 1)) + " |",
                  "| mean px | " + " | ".join(f"{heldout['teams'][t]:.3f}" for t in teams_measured)
                  + f" | {heldout['mean']:.3f} |", "", f"Source: {heldout['source']}.", "", "```bash",
                  heldout["command"], "```"]
    else:
        lines.append("Not measured for this model.")
    lines += ["", "## Rebuild or replace it", "",
              "Retrain the shipped config on the shared data (the training time is in the table above), then package "
              "it; to ship another model, point `--model` at any ship-mode folder retrain wrote:", "", "```bash", REBUILD, "```", "",
              f"The command that trained this one: `{metrics.get('command')}`.", ""]
    return "\n".join(lines)


def _sources(data) -> list[str]:
    if data is None:
        return []
    return [Path(str(s)).name for s in (data if isinstance(data, list) else [data])]


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None
