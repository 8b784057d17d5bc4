"""runners/retrain.py on a tiny synthetic export for one epoch: the three files, ship mode and its epoch
rule, measuring on held-out data, the cap, --reproduce."""
from __future__ import annotations

import json

import pytest
import torch

from cones.load import load_data
from cones.synthetic import make_synthetic, save_supervisely
from deploy.exported import ExportedModel, initializer_bytes
from objectives.heldout_runs import run_path, write_run
from objectives.recipe import RECIPES
from runners.retrain import compare_with_search, main, parse_args, ship_epochs, training_plan
from search_space.cap import max_bytes
from search_space.config import Config
from search_space.registry import create_model
from search_space.size import measure

CFG = Config(family="unet", width=4, depth=2, batch_size=16)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYPOINT_NAS_CACHE", str(tmp_path / "cache"))
    save_supervisely(make_synthetic(32, seed=2), tmp_path / "export")
    return tmp_path / "export"


def write_record(path, cfg: Config = CFG, **search) -> str:
    record = {"config": cfg.to_dict(), "data": {"data": "synthetic", "val_teams": None, "val_fraction": 0.25, "seed": 0},
              "seed": 0, "max_bytes": max_bytes(80), "search": {"epochs": 1, "schedule": "cosine", **search}}
    path.write_text(json.dumps(record))
    return str(path)


def test_ship_mode_trains_on_every_crop_and_writes_the_three_files(data_dir, tmp_path, capsys):
    out = tmp_path / "model"
    config = write_record(tmp_path / "best.json")
    assert main(["--config", config, "--data", str(data_dir), "--out", str(out), "--epochs", "1", "--threads", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["weight_bytes"] == initializer_bytes(out / "model.onnx").weight_bytes == measure(CFG).weight_bytes
    assert metrics["onnx_agrees"] and metrics["onnx_vs_torch_max_px"] <= 1e-3
    assert metrics["mode"] == "ship" and "val" not in metrics and metrics["train_fit"]["mean_px"] > 0
    assert metrics["data"]["train_crops"] == 32 and metrics["data"]["val_crops"] == 0
    assert metrics["epochs"] == 1 and metrics["epoch_budget"] == {"epochs": 1, "chosen_by": "--epochs"}
    assert metrics["recipe"]["name"] == "ship" and metrics["inference"] == RECIPES["ship"].inference
    saved = torch.load(out / "model.pt", weights_only=True)
    assert Config.from_dict(saved["config"]) == CFG
    create_model(CFG).load_state_dict(saved["state_dict"])
    printed = capsys.readouterr().out
    assert "ship mode: all 32 crops train" in printed and "fit only" in printed and "epoch   1/1 " in printed


def test_flip_test_goes_into_the_onnx_graph(data_dir, tmp_path):
    out = tmp_path / "flipped"
    config = write_record(tmp_path / "best.json")
    main(["--config", config, "--data", str(data_dir), "--out", str(out), "--epochs", "1", "--threads", "1",
          "--flip-test"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["inference"].startswith("flip+") and metrics["recipe"]["flip_test"] is True
    assert metrics["onnx_agrees"]  # torch's flip average and the graph's agree
    assert ExportedModel(out / "model.onnx").metadata["inference"] == metrics["inference"]


def test_val_teams_alone_measures_on_a_frame_split(data_dir, tmp_path, capsys):
    out = tmp_path / "measured"
    config = write_record(tmp_path / "best.json")
    main(["--config", config, "--data", str(data_dir), "--out", str(out), "--epochs", "1", "--threads", "1",
          "--val-teams"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mode"] == "measure" and metrics["val"]["mean_px"] > 0
    assert metrics["data"]["val_crops"] == 8 and metrics["data"]["train_crops"] == 24  # val_fraction 0.25
    assert "epoch   1/1  val" in capsys.readouterr().out


def _cached_run(cfg, recipe, data_id, team, seed, mean_px):
    scores = {variant: {"mean_px": mean_px} for variant in ("parabola", "local", "flip+parabola", "flip+local")}
    write_run(run_path(cfg, recipe, data_id, team, seed), cfg, recipe, data_id, team, seed,
              {"status": "ok", "scores": scores})


def test_ship_epochs_are_the_budget_with_the_lowest_held_out_error(data_dir):
    data = load_data(data_dir)
    data = data.__class__(**{**data.__dict__, "teams": tuple("ab"[i % 2] for i in range(len(data)))})
    data_id = data.fingerprint()
    recipe = RECIPES["ship"]
    assert ship_epochs(CFG, recipe, data_dir, data)[0] == recipe.epochs  # nothing cached: the recipe's
    for epochs, errors in ((10, (3.0, 2.0)), (20, (2.0, 1.5)), (40, (2.5, 1.5))):
        for team, error in zip("ab", errors):
            _cached_run(CFG, recipe.replace(epochs=epochs), data_id, team, 0, error)
    _cached_run(CFG, recipe.replace(epochs=80), data_id, "a", 0, 0.1)  # team b missing: not a complete run
    _cached_run(CFG.replace(lr=0.1), recipe.replace(epochs=5), data_id, "a", 0, 0.1)  # another config
    _cached_run(CFG.replace(lr=0.1), recipe.replace(epochs=5), data_id, "b", 0, 0.1)
    epochs, chosen_by = ship_epochs(CFG, recipe, data_dir, data)
    assert epochs == 20  # mean 1.75 px, against 2.5 at 10 and 2.0 at 40
    assert "10: 2.500 px" in chosen_by and "80" not in chosen_by


def test_oversize_config_is_refused_before_training(tmp_path):
    config = write_record(tmp_path / "big.json", Config(family="resnet", width=16, depth=3))
    with pytest.raises(SystemExit, match="over the cap of 81920 bytes.*not trained"):
        main(["--config", config, "--out", str(tmp_path / "model")])
    assert not (tmp_path / "model").exists()


def test_reproduce_prints_the_searchs_error_beside_the_new_one(data_dir, tmp_path, capsys):
    out = tmp_path / "repro"
    config = write_record(tmp_path / "best.json", val_mean_px=10.0)
    main(["--config", config, "--data", str(data_dir), "--out", str(out), "--reproduce", "--threads", "1"])
    reproduce = json.loads((out / "metrics.json").read_text())["reproduce"]
    assert reproduce["search_val_mean_px"] == 10.0
    assert reproduce["relative_difference"] == pytest.approx(reproduce["val_mean_px"] / 10.0 - 1)
    assert "reproduce: search 10.000 px, retrain" in capsys.readouterr().out


def test_a_two_seed_search_error_is_compared_with_the_run_of_the_retrain_s_seed():
    search = {"val_mean_px": 1.3, "val_mean_px_by_seed": [1.2, 1.4], "seed": 5}
    assert compare_with_search(search, 1.2, seed=5)["relative_difference"] == 0.0  # the study's seed: its run
    assert compare_with_search(search, 1.4, seed=6)["search_val_mean_px"] == 1.4  # the next seed's run
    assert compare_with_search(search, 1.3, seed=9)["search_val_mean_px"] == 1.3  # another seed: the mean


def test_unknown_val_team_is_named(data_dir, tmp_path):
    config = write_record(tmp_path / "best.json")
    with pytest.raises(SystemExit, match="val team 'tuwr' is not in the data; known teams: synthetic"):
        main(["--config", config, "--data", str(data_dir), "--out", str(tmp_path / "m"), "--val-teams", "tuwr"])


def test_missing_data_is_one_line_naming_it(tmp_path):
    config = write_record(tmp_path / "best.json")
    with pytest.raises(SystemExit, match=r"retrain: .*nowhere: no such directory"):
        main(["--config", config, "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m")])
    assert not (tmp_path / "m").exists()


def test_the_reproduce_plan_is_the_search_s_run_scored_after_calibration():
    record = {"config": CFG.to_dict(), "weights": "int8", "seed": 4, "search": {"epochs": 7, "schedule": "cosine"}}
    plan = training_plan(parse_args(["--config", "best.json", "--out", "out", "--reproduce"]), record)
    assert (plan.epochs, plan.seed, plan.schedule, plan.recipe, plan.keep_best, plan.patience) == (
        7, 4, "cosine", None, False, None)
    assert (plan.weights, plan.qat_epochs, plan.epochs_chosen_by) == ("int8", 0, "the search's trial")
