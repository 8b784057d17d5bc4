"""Bad input on every command: a non-zero exit, one line that names the value or file and what to do, no
traceback, and every file that was there before (study, model, crops, config) unchanged.

Each case is (command, arguments, exit code, pattern the last stderr line must match). ``{w}`` is the world
(``conftest.base_world``): export/, study.db, best.json, model/, crops/, notes.txt.
"""
from __future__ import annotations

import json
import re

import pytest

from tests.robustness.conftest import invoke, snapshot

DB = "sqlite:///{w}/study.db"
SEARCH = ["--data", "{w}/export", "--storage", "sqlite:///{w}/new.db", "--epochs", "1", "--trials", "1"]
RETRAIN = ["--config", "{w}/best.json", "--data", "{w}/export", "--epochs", "1"]
ADAPT = ["--model", "{w}/model", "--data", "{w}/export"]
EDITED = ["--config", "{w}/cfg.json", "--out", "{w}/m"]  # best.json with the case's edits (see the test)

CASES = {
    # search: values
    "search-max-kb-nan": ("search", [*SEARCH, "--max-kb", "nan"], 2, r"--max-kb: 'nan' is not a finite number"),
    "search-max-kb-inf": ("search", [*SEARCH, "--max-kb", "inf"], 2, r"--max-kb: 'inf' is not a finite number"),
    "search-max-kb-zero": ("search", [*SEARCH, "--max-kb", "0"], 2, r"--max-kb: must be a number > 0, got 0"),
    "search-max-kb-text": ("search", [*SEARCH, "--max-kb", "eighty"], 2, r"--max-kb: 'eighty' is not a number"),
    "search-max-kb-no-family-fits": ("search", [*SEARCH, "--max-kb", "0.1"], 2,
                                     r"--max-kb 0.1: no model of any family fits in 102 bytes; raise --max-kb"),
    "search-threads-negative": ("search", [*SEARCH, "--threads", "-1"], 2, r"--threads: must be an integer >= 1"),
    "search-threads-zero": ("search", [*SEARCH, "--threads", "0"], 2, r"--threads: must be an integer >= 1"),
    "search-timeout-zero": ("search", [*SEARCH, "--timeout", "0"], 2, r"--timeout: must be a number > 0, got 0"),
    "search-trials-zero": ("search", [*SEARCH[:-2], "--trials", "0"], 2, r"--trials: must be an integer >= 1"),
    "search-epochs-fraction": ("search", [*SEARCH, "--epochs", "2.5"], 2, r"--epochs: '2.5' is not an integer"),
    "search-val-fraction": ("search", [*SEARCH, "--val-fraction", "1.5"], 2, r"--val-fraction: must be between 0 and 1"),
    "search-workers-zero": ("search", [*SEARCH, "--workers", "0"], 2, r"--workers: must be an integer >= 1"),
    "search-margin-negative": ("search", [*SEARCH, "--margin", "-1"], 2, r"--margin: must be a number >= 0"),
    "search-unknown-sampler": ("search", [*SEARCH, "--sampler", "grid"], 2, r"--sampler: invalid choice: 'grid'"),
    "search-unknown-option": ("search", [*SEARCH, "--max_kb", "80"], 2, r"unrecognized arguments: --max_kb"),
    # search: data
    "search-data-missing": ("search", ["--data", "{w}/nowhere", *SEARCH[2:]], 2, r"nowhere: no such directory"),
    "search-data-empty": ("search", ["--data", "{w}/empty", *SEARCH[2:]], 2, r"empty.*(ann|export)"),
    "search-data-img-folder": ("search", ["--data", "{w}/export/img", *SEARCH[2:]], 2,
                               r"export/img is the img/ folder of the export .*; pass --data .*/export$"),
    "search-data-a-text-file": ("search", ["--data", "{w}/notes.txt", *SEARCH[2:]], 2, r"notes.txt"),
    "search-strict-bad-annotation": ("search", [*SEARCH, "--strict"], 2, r"1 of 24 annotation files fail the checks .*malformed JSON|ann.*json: .* drop --strict"),
    "search-val-team-unknown": ("search", [*SEARCH, "--val-teams", "nosuchteam"], 2, r"nosuchteam"),
    # search: storage and the study
    "search-storage-a-text-file": ("search", [*SEARCH[:2], "--storage", "sqlite:///{w}/notes.txt", *SEARCH[4:]], 2,
                                   r"notes.txt is not a SQLite database"),
    "search-storage-no-folder": ("search", [*SEARCH[:2], "--storage", "sqlite:///{w}/no/such/s.db", *SEARCH[4:]], 2,
                                 r"no folder .*no/such to create the database in"),
    "search-storage-bad-url": ("search", [*SEARCH[:2], "--storage", "nosuchdb://x", *SEARCH[4:]], 1,
                               r"cannot open storage 'nosuchdb://x'"),
    "search-continue-smaller-cap": ("search", [*SEARCH[:2], "--storage", DB, "--epochs", "1", "--trials", "5",
                                               "--val-fraction", "0.25", "--max-kb", "3"], 1,
                                    r"cap of 81920 bytes .* continue it with --max-kb 80, or .* new --study-name"),
    "search-continue-larger-cap": ("search", [*SEARCH[:2], "--storage", DB, "--epochs", "1", "--trials", "5",
                                              "--val-fraction", "0.25", "--max-kb", "160"], 1,
                                   r"continue it with --max-kb 80"),
    "search-continue-other-split": ("search", [*SEARCH[:2], "--storage", DB, "--epochs", "1", "--trials", "5"], 1,
                                    r"use the same --data/--val-teams/--val-fraction/--seed, or a new --study-name"),
    # export
    "export-out-is-the-study": ("export", ["--storage", DB, "--out", "{w}/study.db"], 2,
                                r"study.db is a database .* never written over"),
    "export-out-is-the-study-forced": ("export", ["--storage", DB, "--out", "{w}/study.db", "--force"], 2,
                                       r"study.db is a database"),
    "export-out-is-a-folder": ("export", ["--storage", DB, "--out", "{w}/model"], 2, r"model is a folder; give a file"),
    "export-out-exists": ("export", ["--storage", DB, "--out", "{w}/best.json"], 2,
                          r"best.json already exists; pick a new name, or add --force"),
    "export-storage-a-text-file": ("export", ["--storage", "sqlite:///{w}/notes.txt", "--out", "{w}/b.json"], 2,
                                   r"notes.txt is not a SQLite database"),
    "export-storage-missing": ("export", ["--storage", "sqlite:///{w}/nope.db", "--out", "{w}/b.json"], 2,
                               r"no such file .*nope.db"),
    "export-default-storage-missing": ("export", ["--out", "{w}/b.json"], 2, r"no such file optuna.db"),
    "export-unknown-study": ("export", ["--storage", DB, "--study", "nope", "--out", "{w}/b.json"], 2,
                             r"--study 'nope' is not in .*keypoints"),
    "export-unknown-trial": ("export", ["--storage", DB, "--trial", "99", "--out", "{w}/b.json"], 2,
                             r"--trial 99: .* no such trial"),
    "export-max-kb-nan": ("export", ["--storage", DB, "--max-kb", "nan", "--out", "{w}/b.json"], 2,
                          r"--max-kb: 'nan' is not a finite number"),
    "export-max-kb-too-small": ("export", ["--storage", DB, "--max-kb", "0.5", "--out", "{w}/b.json"], 2,
                                r"no complete trial within 512 bytes.*raise --max-kb"),
    # retrain: the config file
    "retrain-config-missing": ("retrain", ["--config", "{w}/nope.json", "--out", "{w}/m"], 2,
                               r"--config .*nope.json: no such file"),
    "retrain-config-a-folder": ("retrain", ["--config", "{w}/model", "--out", "{w}/m"], 2, r"model is a folder"),
    "retrain-config-not-json": ("retrain", ["--config", "{w}/notes.txt", "--out", "{w}/m"], 2,
                                r"notes.txt is not valid JSON"),
    "retrain-config-a-list": ("retrain", ["--config", "{w}/list.json", "--out", "{w}/m"], 2, r"holds a JSON list"),
    "retrain-config-width-fraction": ("retrain", EDITED, 2,
                                      r"config width must be an integer, got 6.5", {"width": 6.5}),
    "retrain-config-unknown-family": ("retrain", EDITED, 2,
                                      r"unknown family 'vgg'; known: mobile, plain, resnet, unet", {"family": "vgg"}),
    "retrain-config-expand-zero": ("retrain", EDITED, 2,
                                   r"expand must be an integer >= 1, got 0", {"expand": 0}),
    "retrain-config-negative-weight-decay": ("retrain", EDITED, 2,
                                             r"weight_decay must be a finite number >= 0, got -0.1",
                                             {"weight_decay": -0.1}),
    "retrain-config-batch-norm-string": ("retrain", EDITED, 2,
                                         r'config batch_norm must be true or false, got "no"', {"batch_norm": "no"}),
    "retrain-config-negative-sigma": ("retrain", EDITED, 2,
                                      r"sigma .* must be in \[0.3, 10.0\], got -2", {"sigma": -2}),
    "retrain-config-zero-sigma": ("retrain", EDITED, 2,
                                  r"sigma .* got 0", {"sigma": 0}),
    "retrain-config-momentum": ("retrain", EDITED, 2,
                                r"momentum must be in \[0, 1\), got 5", {"momentum": 5}),
    "retrain-config-lr-string": ("retrain", EDITED, 2,
                                 r'config lr must be a finite number, got "fast"', {"lr": "fast"}),
    "retrain-config-unknown-key": ("retrain", EDITED, 2,
                                   r"unknown config keys \['widht'\]", {"widht": 8}),
    "retrain-config-max-bytes-string": ("retrain", EDITED, 2,
                                        r'max_bytes must be an integer > 0, got "80KB"', None, {"max_bytes": "80KB"}),
    "retrain-config-over-the-cap": ("retrain", [*RETRAIN, "--out", "{w}/m", "--max-kb", "1"], 1,
                                    r"over the cap of 1024 bytes .* not trained"),
    # retrain: outputs, checked before any training
    "retrain-out-exists": ("retrain", [*RETRAIN, "--out", "{w}/model"], 2,
                           r"--out .*model already exists and is not empty; pick a new folder, or add --force"),
    "retrain-out-a-file": ("retrain", [*RETRAIN, "--out", "{w}/notes.txt"], 2, r"notes.txt is a file; give a folder"),
    "retrain-out-the-study": ("retrain", [*RETRAIN, "--out", "{w}/study.db", "--force"], 2, r"study.db is a database"),
    "retrain-out-the-data": ("retrain", [*RETRAIN, "--out", "{w}/export", "--force"], 2,
                             r"export is or lies inside the input"),
    # retrain: values and data
    "retrain-epochs-zero": ("retrain", [*RETRAIN[:-2], "--epochs", "0", "--out", "{w}/m"], 2, r"--epochs: must be"),
    "retrain-threads-negative": ("retrain", [*RETRAIN, "--threads", "-1", "--out", "{w}/m"], 2, r"--threads: must be"),
    "retrain-max-kb-nan": ("retrain", [*RETRAIN, "--max-kb", "nan", "--out", "{w}/m"], 2, r"--max-kb: 'nan'"),
    "retrain-data-missing": ("retrain", ["--config", "{w}/best.json", "--data", "{w}/nowhere", "--out", "{w}/m"], 1,
                             r"nowhere: no such directory"),
    "retrain-data-img-folder": ("retrain", ["--config", "{w}/best.json", "--data", "{w}/export/img", "--out",
                                            "{w}/m"], 1, r"pass --data .*/export$"),
    "retrain-val-team-unknown": ("retrain", [*RETRAIN, "--val-teams", "nosuchteam", "--out", "{w}/m"], 1,
                                 r"nosuchteam"),
    # predict
    "predict-model-a-text-file": ("predict", ["--model", "{w}/notes.txt", "{w}/crops", "--out", "{w}/p"], 2,
                                  r"notes.txt is not an ONNX model .* pass the model.onnx"),
    "predict-model-a-torch-file": ("predict", ["--model", "{w}/model/model.pt", "{w}/crops", "--out", "{w}/p"], 2,
                                   r"model.pt is not an ONNX model .*a torch checkpoint"),
    "predict-model-missing": ("predict", ["--model", "{w}/nope.onnx", "{w}/crops", "--out", "{w}/p"], 2,
                              r"no ONNX model at .*nope.onnx"),
    "predict-model-five-keypoints": ("predict", ["--model", "{w}/five.onnx", "{w}/crops", "--out", "{w}/p"], 2,
                                     r"five.onnx: output 'keypoints' has shape .* contract is \[N, 7, 2\]"),
    "predict-out-the-input-folder": ("predict", ["--model", "{w}/model/model.onnx", "{w}/crops", "--out", "{w}/crops",
                                                 "--force"], 2, r"crops is or lies inside the input"),
    "predict-out-inside-the-input": ("predict", ["--model", "{w}/model/model.onnx", "{w}/crops", "--out",
                                                 "{w}/crops/p"], 2, r"crops/p is or lies inside the input"),
    "predict-out-exists": ("predict", ["--model", "{w}/model/model.onnx", "{w}/crops", "--out", "{w}/model"], 2,
                           r"already exists and is not empty"),
    "predict-input-missing": ("predict", ["--model", "{w}/model/model.onnx", "{w}/nope.png", "--out", "{w}/p"], 2,
                              r"nope.png: no such file or folder"),
    "predict-input-no-images": ("predict", ["--model", "{w}/model/model.onnx", "{w}/model", "--out", "{w}/p"], 2,
                                r"model: no images"),
    "predict-batch-zero": ("predict", ["--model", "{w}/model/model.onnx", "{w}/crops", "--out", "{w}/p", "--batch",
                                       "0"], 2, r"--batch: must be an integer >= 1"),
    "predict-scale-nan": ("predict", ["--model", "{w}/model/model.onnx", "{w}/crops", "--out", "{w}/p", "--scale",
                                      "nan"], 2, r"--scale: 'nan' is not a finite number"),
    # adapt
    "adapt-model-missing": ("adapt", ["--model", "{w}/nope", "--data", "{w}/export", "--out", "{w}/a"], 1,
                            r"--model .*nope: no model.pt there"),
    "adapt-model-not-a-model": ("adapt", ["--model", "{w}/fake", "--data", "{w}/export", "--out", "{w}/a"], 1,
                                r"fake/model.pt is not a model retrain.py wrote"),
    "adapt-too-few-crops": ("adapt", [*ADAPT[:2], "--data", "{w}/few", "--out", "{w}/a"], 1,
                            r"few has 3 usable labelled crops; adapting needs at least 5"),
    "adapt-out-the-model": ("adapt", [*ADAPT, "--out", "{w}/model", "--force"], 2, r"model is or lies inside the input"),
    "adapt-out-exists": ("adapt", [*ADAPT, "--out", "{w}/crops"], 2, r"crops already exists and is not empty"),
    "adapt-folds": ("adapt", [*ADAPT, "--out", "{w}/a", "--folds", "1"], 2, r"--folds: .*>= 2"),
    "adapt-steps-zero": ("adapt", [*ADAPT, "--out", "{w}/a", "--steps", "0"], 2, r"--steps: must be an integer >= 1"),
    "adapt-data-missing": ("adapt", [*ADAPT[:2], "--data", "{w}/nowhere", "--out", "{w}/a"], 1, r"nowhere"),
    # inspect_data, report, the inference benchmark
    "inspect-data-missing": ("inspect_data", ["--data", "{w}/nowhere"], 1, r"nowhere: no such directory"),
    "inspect-size": ("inspect_data", ["--data", "{w}/export", "--size", "48by64"], 2, r"--size must be WIDTHxHEIGHT"),
    "report-out-the-study": ("report", ["--storage", DB, "--out", "{w}/study.db"], 2, r"study.db is a database"),
    "report-out-exists": ("report", ["--storage", DB, "--out", "{w}/model"], 2, r"model already exists and is not empty"),
    "report-storage-a-text-file": ("report", ["--storage", "sqlite:///{w}/notes.txt", "--out", "{w}/r"], 2,
                                   r"notes.txt is not a SQLite database"),
    "inference-model-a-text-file": ("inference", ["{w}/notes.txt", "--repeats", "1"], 2, r"notes.txt is not an ONNX model"),
}


def _prepare(world):
    """Bad files some cases need, written before the snapshot so that they must stay unchanged too."""
    (world / "empty").mkdir()
    (world / "list.json").write_text("[1, 2]\n")
    record = json.loads((world / "best.json").read_text())
    return record


def _write_five_keypoint_model(path):
    import torch
    from torch import nn

    class Five(nn.Module):
        def forward(self, image):
            heatmaps = image[:, :1].repeat(1, 5, 1, 1)
            return heatmaps.mean(dim=(2, 3))[..., None].repeat(1, 1, 2), heatmaps

    torch.onnx.export(Five(), torch.zeros(1, 3, 64, 48), str(path), input_names=["image"],
                      output_names=["keypoints", "heatmaps"], dynamic_axes={"image": {0: "n"}}, dynamo=False)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_is_one_line_and_loses_nothing(case, world, capsys):
    command, argv, code, pattern, *edits = CASES[case]
    record = _prepare(world)
    if edits:
        config_edit = edits[0] or {}
        record_edit = edits[1] if len(edits) > 1 else {}
        (world / "cfg.json").write_text(json.dumps({**record, **record_edit,
                                                    "config": {**record["config"], **config_edit}}))
    if case == "predict-model-five-keypoints":
        _write_five_keypoint_model(world / "five.onnx")
    if case == "adapt-model-not-a-model":
        (world / "fake").mkdir()
        (world / "fake" / "model.pt").write_text("not a checkpoint")
    if case == "adapt-too-few-crops":
        from cones.synthetic import make_synthetic, save_supervisely

        save_supervisely(make_synthetic(3, seed=7), world / "few")
    if case == "search-strict-bad-annotation":
        ann = sorted((world / "export").rglob("*.json"))[-1]
        ann.write_text("{ not json")
    before = snapshot(world)

    outcome = invoke(command, [arg.format(w=world) for arg in argv], capsys)

    assert "Traceback" not in outcome.err + outcome.out
    assert outcome.code == code, (outcome.code, outcome.err)
    assert re.search(pattern, outcome.message), outcome.message
    after = snapshot(world)
    assert {path: digest for path, digest in after.items() if path in before} == before  # nothing changed
    assert not (world / "new.db").exists()  # a search refused for bad input starts no study
