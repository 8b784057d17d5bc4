"""The model committed in models/default/: the ONNX contract, the cap, model.pt and model.onnx agreeing, its card
generated from its files, a small folder, and (where the shared data is) the figures in metrics.json and the
replay set reproduced from that data."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from cones.replay import REPLAY_CROPS, load_replay, select_replay
from cones.synthetic import make_synthetic
from deploy import packaged
from deploy.exported import ExportedModel, initializer_bytes
from objectives.heatmaps import parse_inference
from search_space.config import Config
from search_space.registry import create_model
from search_space.size import measure
from shipping.agreement import check_agreement
from tests.real_data import real_data_dir

FOLDER = packaged.PACKAGED_DIR


@pytest.fixture(scope="module")
def metrics() -> dict:
    return json.loads((FOLDER / "metrics.json").read_text())


@pytest.fixture(scope="module")
def model(metrics):
    saved = torch.load(FOLDER / "model.pt", weights_only=True)
    cfg = Config.from_dict(saved["config"])
    assert cfg == Config.from_dict(metrics["config"])
    net = create_model(cfg)
    net.load_state_dict(saved["state_dict"])
    return cfg, net.eval()


def test_is_the_shipped_config_trained_in_ship_mode_on_five_teams(metrics):
    shipped = json.loads((Path(__file__).parents[2] / "benchmarks/configs/shipped.json").read_text())
    assert Config.from_dict(metrics["config"]) == Config.from_dict(shipped["config"])
    assert metrics["mode"] == "ship" and metrics["recipe"]["name"] == "ship"
    team_crops = metrics["data"]["team_crops"]
    assert set(team_crops) == {"amz", "eikona", "pwrrt", "so", "tuwr"}
    assert sum(team_crops.values()) == metrics["data"]["train_crops"] == 3606 and metrics["data"]["val_crops"] == 0


def test_onnx_contract_and_cap(metrics):
    exported = ExportedModel(FOLDER / "model.onnx")
    assert exported.input_size == (48, 64) and len(exported.keypoint_names) == 7
    keypoints, heatmaps = exported.run(np.random.default_rng(0).random((2, 3, 64, 48), dtype=np.float32))
    assert keypoints.shape == (2, 7, 2) and heatmaps.shape == (2, 7, 64, 48) and keypoints.dtype == np.float32
    weight_bytes = initializer_bytes(FOLDER / "model.onnx").weight_bytes
    assert weight_bytes == metrics["weight_bytes"] == measure(Config.from_dict(metrics["config"])).weight_bytes
    assert weight_bytes <= metrics["max_bytes"] == 81920


def test_model_pt_and_model_onnx_agree(model, metrics):
    cfg, net = model
    crops = make_synthetic(64, seed=11)
    agreement = check_agreement(net, FOLDER / "model.onnx", crops, **parse_inference(metrics["inference"]))
    assert agreement["agrees"], agreement


def test_card_is_generated_from_the_files_and_the_folder_is_small(metrics):
    replay = dict(sorted(Counter(load_replay(FOLDER / packaged.REPLAY_FILE).teams).items()))
    heldout = packaged.read_json(FOLDER / packaged.HELDOUT_FILE)
    assert (FOLDER / packaged.CARD_FILE).read_text() == packaged.model_card(metrics, heldout, replay)
    sizes = {p.name: p.stat().st_size for p in FOLDER.iterdir()}
    assert sum(size for name, size in sizes.items() if name != packaged.REPLAY_FILE) < 400 * 1024
    assert sizes[packaged.REPLAY_FILE] < 5 * 1024 * 1024 and sum(replay.values()) == REPLAY_CROPS


@pytest.mark.real_data
def test_figures_and_replay_set_match_a_fresh_evaluation_of_the_shared_data(model, metrics):
    from cones.load import load_data
    from objectives.train import evaluate

    first = real_data_dir()
    data = load_data([first, first.parent / "cones_more"])
    cfg, net = model
    fresh = evaluate(net, cfg, data)  # retrain scores the fit with evaluate's default decoder (argmax + parabola)
    assert fresh.mean_px == pytest.approx(metrics["train_fit"]["mean_px"], abs=1e-4)
    assert fresh.pck2 == pytest.approx(metrics["train_fit"]["pck2"], abs=1e-4)
    assert metrics["data"]["team_crops"] == dict(sorted(Counter(data.teams).items()))
    assert load_replay(FOLDER / packaged.REPLAY_FILE).names == select_replay(data).names
