"""--weights int8 on retrain, search and export: the int8 model written and checked, the study's format recorded
and kept, mistakes in one line."""
from __future__ import annotations

import json

import optuna
import pytest
import torch

from cli.exits import run
from deploy.exported import ExportedModel, initializer_bytes
from runners import export, retrain, search
from search_space.cap import max_bytes
from search_space.config import Config
from search_space.registry import create_model
from search_space.size import measure
from shipping.quantize import prepare
from tests.runners.test_retrain import CFG, data_dir, write_record  # noqa: F401 (data_dir is a fixture)

pytestmark = pytest.mark.slow


def _exit_code(main) -> int:
    try:
        return main()
    except SystemExit as stop:  # argparse's own exit
        return stop.code


def retrain_int8(config: str, data, out, *extra) -> dict:
    assert retrain.main(["--config", config, "--data", str(data), "--out", str(out), "--epochs", "1", "--threads", "1",
                         "--qat-epochs", "1", *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_retrain_int8_writes_the_int8_model_and_its_exact_bytes(data_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "model8"
    metrics = retrain_int8(write_record(tmp_path / "best.json"), data_dir, out, "--weights", "int8")
    assert metrics["weights"] == "int8" and ExportedModel(out / "model.onnx").weights == "int8"
    assert metrics["weight_bytes"] == initializer_bytes(out / "model.onnx").weight_bytes == \
        measure(CFG, weights="int8").weight_bytes
    assert metrics["float32_weight_bytes"] == measure(CFG).weight_bytes > metrics["weight_bytes"]
    assert metrics["onnx_agrees"] and metrics["onnx_agreement"]["tolerance_px"] == 0.05
    assert metrics["int8"]["qat_epochs"] == 1 and len(metrics["int8"]["qat_history"]) == 1
    saved = torch.load(out / "model.pt", weights_only=True)
    create_model(CFG).load_state_dict(saved["state_dict"])  # the float model, to fine-tune as before
    prepare(create_model(CFG)).load_state_dict(saved["int8_state_dict"])
    printed = capsys.readouterr().out
    assert "of int8 weights" in printed and "quantization-aware fine-tuning" in printed


def test_retrain_follows_the_exported_weight_format(data_dir, tmp_path):  # noqa: F811
    config = tmp_path / "best.json"
    write_record(config)
    config.write_text(json.dumps({**json.loads(config.read_text()), "weights": "int8"}))
    assert retrain_int8(str(config), data_dir, tmp_path / "m")["weights"] == "int8"


def test_a_config_over_the_float32_cap_fits_as_int8(tmp_path):
    big = Config(family="resnet", width=8, depth=3)  # 302 KB in float32, 78 KB in int8
    assert measure(big).weight_bytes > max_bytes(80) >= measure(big, weights="int8").weight_bytes
    config = write_record(tmp_path / "big.json", big)
    with pytest.raises(SystemExit, match="float32 weights .* over the cap"):
        retrain.main(["--config", config, "--out", str(tmp_path / "m")])
    with pytest.raises(SystemExit, match="int8 weights .* over the cap"):
        retrain.main(["--config", write_record(tmp_path / "bigger.json", Config(family="resnet", width=16, depth=3)),
                      "--out", str(tmp_path / "m"), "--weights", "int8"])


@pytest.mark.parametrize("argv, message", [
    (["--qat-epochs", "2"], "--qat-epochs 2 fine-tunes an int8 model, and the weights are float32; add --weights int8"),
    (["--weights", "int4"], "argument --weights: invalid choice: 'int4'"),
])
def test_retrain_bad_weight_options_are_one_line(tmp_path, capsys, argv, message):
    config = write_record(tmp_path / "best.json")
    code = _exit_code(lambda: run(lambda: retrain.main(["--config", config, "--out", str(tmp_path / "m"), *argv]),
                                  "retrain"))
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_a_bad_weight_format_in_the_config_is_named(tmp_path, capsys):
    config = tmp_path / "best.json"
    write_record(config)
    config.write_text(json.dumps({**json.loads(config.read_text()), "weights": "fp16"}))
    assert run(lambda: retrain.main(["--config", str(config), "--out", str(tmp_path / "m")]), "retrain") == 2
    assert 'weights must be one of float32, int8, got "fp16"' in capsys.readouterr().err


def run_search(tmp_path, export_dir, *extra) -> str:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert search.main(["--data", str(export_dir), "--storage", url, "--epochs", "1", "--val-fraction", "0.25",
                        "--no-baselines", *extra]) == 0
    return url


def test_an_int8_search_records_int8_bytes_and_scores(tmp_path, tiny_export, isolated_cache):
    url = run_search(tmp_path, tiny_export, "--trials", "2", "--weights", "int8")
    study = optuna.load_study(study_name="keypoints", storage=url)
    assert study.user_attrs["weights"] == "int8"
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete
    for trial in complete:
        cfg = Config.from_dict(trial.user_attrs["config"])
        assert trial.user_attrs["weight_bytes"] == measure(cfg, weights="int8").weight_bytes
        assert trial.values[0] == trial.user_attrs["val_mean_px"] != trial.user_attrs["val_float32_mean_px"]


def test_a_float32_study_refuses_to_continue_as_int8(tmp_path, tiny_export, isolated_cache):
    run_search(tmp_path, tiny_export, "--trials", "1")
    with pytest.raises(SystemExit, match="searched with float32 weights, this run asks for int8; continue it with "
                                         "--weights float32, or search int8 in a new --study-name") as stop:
        run_search(tmp_path, tiny_export, "--trials", "2", "--weights", "int8")
    assert "\n" not in str(stop.value.code)
    study = optuna.load_study(study_name="keypoints", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert len(study.trials) == 1 and study.user_attrs["weights"] == "float32"


def test_export_records_the_weight_format_and_checks_the_cap_in_it(tmp_path, tiny_export, isolated_cache):
    url = run_search(tmp_path, tiny_export, "--trials", "2")
    assert export.main(["--storage", url, "--out", str(tmp_path / "f.json")]) == 0
    assert json.loads((tmp_path / "f.json").read_text())["weights"] == "float32"
    assert export.main(["--storage", url, "--out", str(tmp_path / "i.json"), "--weights", "int8"]) == 0
    record = json.loads((tmp_path / "i.json").read_text())
    assert record["weights"] == "int8" and record["search"]["weights"] == "float32"
