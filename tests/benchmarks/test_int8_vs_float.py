"""benchmarks/int8_vs_float.py on synthetic cones split into invented teams: both formats of one config
retrained, exported and measured through ONNX Runtime, with the bytes the files hold."""
from __future__ import annotations

import json
import math

import pytest

from benchmarks.int8_vs_float import compare, format_summary, main
from cones.synthetic import save_supervisely
from deploy.exported import ExportedModel, initializer_bytes
from objectives.recipe import Recipe
from search_space.cap import max_bytes
from tests.benchmarks.test_generalisation import CFG, invented_teams

TINY = Recipe(epochs=1)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYPOINT_NAS_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    """Both formats of one config, alpha held out, one seed; trained once for the module, in a cache of its own."""
    folder = tmp_path_factory.mktemp("int8_vs_float")
    models = [("float32", "same.json", CFG), ("int8", "same.json", CFG)]
    with pytest.MonkeyPatch.context() as patch:  # module scope: set up before the autouse fixture above
        patch.setenv("KEYPOINT_NAS_CACHE", str(folder / "cache"))
        return compare(invented_teams(), models, ["alpha"], [0], TINY, qat_epochs=1, folder=folder, cap=max_bytes(80),
                       threads=1, repeats=3, log=lambda *_: None)


def test_the_table_has_a_float32_and_an_int8_row(summary):
    assert [row["model"] for row in summary["rows"]] == ["float32", "int8"]
    table = format_summary(summary)
    assert table.splitlines()[1].startswith("float32") and any(line.startswith("int8") for line in table.splitlines())


def test_int8_stores_fewer_bytes_than_float32_for_the_same_config(summary):
    float32, int8 = summary["rows"]
    assert int8["weight_bytes"] < float32["weight_bytes"] == int8["float32_weight_bytes"]


def test_the_bytes_are_the_onnx_files_initializer_bytes(summary):
    for fold in summary["folds"]:
        assert ExportedModel(fold["onnx_file"]).weights == fold["model"]
        assert fold["weight_bytes"] == initializer_bytes(fold["onnx_file"]).weight_bytes
    rows = {row["model"]: row for row in summary["rows"]}
    assert {f["model"]: f["weight_bytes"] for f in summary["folds"]} == {m: r["weight_bytes"] for m, r in rows.items()}


def test_the_int8_error_and_latency_are_finite(summary):
    int8 = summary["rows"][1]
    assert math.isfinite(int8["teams"]["alpha"]["mean_px"]) and 0 <= int8["mean"]["pck2"] <= 1
    assert int8["latency_ms"][1] > 0 and int8["latency_ms"][32] > 0


def test_the_cli_holds_out_every_team_and_reuses_the_float_training(tmp_path, capsys):
    save_supervisely(invented_teams(), tmp_path / "export")
    config = tmp_path / "best.json"
    config.write_text(json.dumps({"config": CFG.to_dict()}))
    argv = ["--float", str(config), "--int8", str(config), "--data", str(tmp_path / "export"), "--teams", "all",
            "--epochs", "1", "--qat-epochs", "0", "--threads", "1", "--repeats", "2",
            "--json", str(tmp_path / "s.json")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    written = json.loads((tmp_path / "s.json").read_text())
    assert written["teams"] == ["alpha", "bravo", "charlie"] and len(written["folds"]) == 6
    # The int8 model's float training is the float32 model's: trained once per team, then read from the cache.
    assert printed.count("cached as") == 3 and printed.count(": cached (") == 3


def test_a_config_over_the_cap_in_its_format_is_refused_before_training(tmp_path):
    config = tmp_path / "big.json"
    config.write_text(json.dumps({"family": "resnet", "width": 8, "depth": 3}))  # 302 KB in float32, 78 KB in int8
    with pytest.raises(SystemExit, match="--float .*big.json: .* bytes of float32 weights .*, over the cap"):
        main(["--float", str(config), "--int8", str(config), "--data", str(tmp_path / "none")])
