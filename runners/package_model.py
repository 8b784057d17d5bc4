"""Package a model retrain wrote as the project's own (``models/default/``), the one predict and adapt use
without --model.

    python runners/retrain.py --config benchmarks/configs/shipped.json --data ../shared/cones_dataset \
        --data ../shared/cones_more --out runs/default-model --threads 1
    python runners/package_model.py --model runs/default-model --data ../shared/cones_dataset \
        --data ../shared/cones_more --force

Copies ``model.onnx``, ``model.pt`` and ``metrics.json`` from ``--model`` (a ship-mode retrain: every crop of
``--data`` trained), adds each team's crop count to ``metrics.json``, writes the replay set (``replay.npz``: a
few hundred of those crops, equal shares per team, fixed seed; adapt mixes them in where the shared data is
not on the machine) and the model card ``MODEL.md``, from those files and ``heldout.json`` (the config's
leave-one-team-out figures) when the folder has one. ``--data`` must be the data the model was trained on: the
crop count is checked against ``metrics.json``.
"""
from __future__ import annotations

if __name__ == "__main__":  # first: Ctrl-C while the imports below run is one line and exit 130
    from cli.exits import stop_on_ctrl_c
    stop_on_ctrl_c("package_model")

import argparse
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

from cli.args import add_data_argument, doc_parser, positive_int
from cli.exits import UserError, run
from cli.paths import input_path
from cones.load import describe_sources, load_data
from cones.replay import REPLAY_CROPS, REPLAY_SEED, save_replay, select_replay
from deploy.atomic import replacing, write_json, write_text
from deploy.exported import ExportedModel
from deploy.packaged import CARD_FILE, HELDOUT_FILE, PACKAGED_DIR, REPLAY_FILE, model_card, read_json

FILES = ("model.onnx", "model.pt", "metrics.json")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source, out = input_path(args.model, "--model", kind="dir"), Path(args.out)
    missing = [name for name in FILES if not (source / name).is_file()]
    if missing:
        raise UserError(f"--model {source}: no {', '.join(missing)} there; pass the folder runners/retrain.py wrote")
    metrics = json.loads((source / "metrics.json").read_text())
    if metrics.get("mode") != "ship":
        raise UserError(f"--model {source} was trained in {metrics.get('mode')!r} mode (teams held out); package a "
                        "ship-mode retrain (no --val-teams), which trains on every crop")
    ExportedModel(source / "model.onnx")  # the contract: a file predict can run
    if out.resolve() == source.resolve():
        raise UserError(f"--out {out} is --model; package into another folder")
    if out.exists() and any(out.iterdir()) and not args.force:
        raise UserError(f"--out {out} already holds a packaged model; add --force to replace it")
    try:
        data = load_data(args.data)
    except ValueError as error:
        raise UserError(str(error)) from None
    trained_on = (metrics.get("data") or {}).get("train_crops")
    if trained_on != len(data):
        raise UserError(f"--data {describe_sources(args.data)} has {len(data)} crops, and the model trained on "
                        f"{trained_on}; give the --data the model was retrained on")

    out.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "model.pt"):
        with replacing(out / name) as tmp:
            shutil.copyfile(source / name, tmp)
    metrics["data"]["team_crops"] = dict(sorted(Counter(data.teams).items()))
    write_json(out / "metrics.json", metrics)
    replay = select_replay(data, args.replay_crops, REPLAY_SEED)
    with replacing(out / REPLAY_FILE) as tmp:
        save_replay(replay, tmp)
    replay_teams = dict(sorted(Counter(replay.teams).items()))
    write_text(out / CARD_FILE, model_card(metrics, read_json(out / HELDOUT_FILE), replay_teams))
    size = sum((out / name).stat().st_size for name in (*FILES, REPLAY_FILE))
    print(f"packaged {source} into {out}: {', '.join((*FILES, REPLAY_FILE, CARD_FILE))} ({size / 1024:.0f} KB); "
          f"replay set {len(replay)} crops ({', '.join(f'{t} {n}' for t, n in replay_teams.items())})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.add_argument("--model", required=True, metavar="DIR", help="a folder runners/retrain.py wrote in ship mode")
    add_data_argument(parser, "the data the model was retrained on", required=True)
    parser.add_argument("--out", default=str(PACKAGED_DIR), metavar="DIR",
                        help=f"where to package it (default {PACKAGED_DIR})")
    parser.add_argument("--force", action="store_true", help="replace the model already packaged there")
    parser.add_argument("--replay-crops", type=positive_int, default=REPLAY_CROPS,
                        help=f"crops in the replay set (default {REPLAY_CROPS})")
    return parser


def parse_args(argv: list[str] | None):
    return build_parser().parse_args(argv)


if __name__ == "__main__":
    sys.exit(run(main, "package_model"))
