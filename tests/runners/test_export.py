"""runners/export.py against real Optuna studies in a temporary SQLite file."""
from __future__ import annotations

import json

import optuna
import pytest

from runners.export import main
from search_space.cap import max_bytes
from search_space.config import Config
from search_space.size import measure
from shipping.export import PickError, pick_trial

CAP = max_bytes(80)
STUDY_ATTRS = {"data": "/data/cones", "val_teams": ["tuwr"], "val_fraction": 0.1, "seed": 3, "max_bytes": CAP,
               "max_epochs": 20, "command": "python runners/search.py ..."}


def add_trial(study: optuna.Study, cfg: Config, error: float, state=optuna.trial.TrialState.COMPLETE,
              weight_bytes: int | None = None, status: str = "ok") -> None:
    size = measure(cfg)
    weight_bytes = size.weight_bytes if weight_bytes is None else weight_bytes
    complete = state == optuna.trial.TrialState.COMPLETE
    values = None if not complete else ([error] if len(study.directions) == 1 else [error, weight_bytes / 1024])
    attrs = {"config": cfg.to_dict(), "weight_bytes": weight_bytes, "params": size.params, "macs": size.macs,
             "epochs": 20, "train_seconds": 12.5, "val_mean_px": error, "val_median_px": error * 0.8,
             "val_pck1": 0.3, "val_pck2": 0.6, "val_pck3": 0.8, "val_heatmap_mse": 0.001, "status": status,
             "history": [error + 1, error]}
    study.add_trial(optuna.trial.create_trial(state=state, values=values, params={}, distributions={},
                                              user_attrs=attrs))


def make_study(storage: str, name: str, objectives=("error",)) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=storage, directions=["minimize"] * len(objectives))
    for key, value in {**STUDY_ATTRS, "objectives": list(objectives)}.items():
        study.set_user_attr(key, value)
    return study


@pytest.fixture
def storage(tmp_path):
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture
def single(storage):
    """Trials: 0 ok 2.0 px; 1 oversize but 1.0 px; 2 pruned; 3 ok 1.5 px; 4 failed."""
    study = make_study(storage, "single")
    add_trial(study, Config(width=4), 2.0)
    add_trial(study, Config(family="resnet", width=16, depth=3), 1.0)
    add_trial(study, Config(width=6), 0.5, state=optuna.trial.TrialState.PRUNED)
    add_trial(study, Config(family="unet", width=8, depth=3, lr=3e-3), 1.5)
    add_trial(study, Config(width=5), 0.1, state=optuna.trial.TrialState.FAIL)
    return study


def run(storage: str, tmp_path, *args: str) -> dict:
    out = tmp_path / "best.json"
    assert main(["--storage", storage, "--out", str(out), "--force", *args]) == 0  # one file, written over
    return json.loads(out.read_text())


def test_default_is_the_best_trial_within_the_cap(single, storage, tmp_path):
    record = run(storage, tmp_path, "--study", "single")
    assert record["search"]["trial"] == 3
    assert Config.from_dict(record["config"]) == Config(family="unet", width=8, depth=3, lr=3e-3)


def test_record_holds_metrics_split_and_seed(single, storage, tmp_path):
    record = run(storage, tmp_path)  # the only study in the storage
    search = record["search"]
    assert search["val_mean_px"] == 1.5 and search["epochs"] == 20 and search["values"] == [1.5]
    assert search["weight_bytes"] == measure(Config(family="unet", width=8, depth=3)).weight_bytes
    assert record["data"] == {"data": "/data/cones", "val_teams": ["tuwr"], "val_fraction": 0.1, "seed": 3}
    assert record["seed"] == 3 and record["max_bytes"] == CAP


def test_trial_number_is_exported_as_asked(single, storage, tmp_path):
    assert run(storage, tmp_path, "--trial", "0")["search"]["trial"] == 0


@pytest.mark.parametrize("number, message", [
    (9, "no such trial"),
    (2, "is PRUNED, not COMPLETE"),
    (4, "is FAIL, not COMPLETE"),
    (1, "over the cap of 81920 bytes \\(80 KB\\), the study's cap"),
])
def test_trial_that_cannot_be_exported_is_refused(single, storage, tmp_path, number, message):
    with pytest.raises(SystemExit, match=message):
        main(["--storage", storage, "--trial", str(number), "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_no_feasible_trial_is_an_error(storage, tmp_path):
    study = make_study(storage, "empty")
    add_trial(study, Config(family="resnet", width=16, depth=3), 1.0)
    add_trial(study, Config(), 1.0, state=optuna.trial.TrialState.PRUNED)
    with pytest.raises(SystemExit, match="no complete trial within 81920 bytes.*1 COMPLETE, 1 PRUNED"):
        main(["--storage", storage, "--out", str(tmp_path / "x.json")])


def test_max_kb_picks_the_most_accurate_trial_under_that_size(storage, tmp_path):
    study = make_study(storage, "front", objectives=("error", "size"))
    small, medium = Config(family="mobile", width=4, depth=2), Config(family="unet", width=4, depth=2)
    add_trial(study, small, 3.0)
    add_trial(study, medium, 2.0)
    add_trial(study, Config(family="unet", width=8, depth=3), 1.0)
    limit_kb = measure(medium).weight_bytes / 1024
    assert measure(small).weight_bytes < measure(medium).weight_bytes < measure(Config(family="unet")).weight_bytes
    assert run(storage, tmp_path, "--max-kb", f"{limit_kb}")["search"]["trial"] == 1
    assert run(storage, tmp_path)["search"]["trial"] == 2
    with pytest.raises(SystemExit, match="no complete trial within 1024 bytes.*raise --max-kb"):
        main(["--storage", storage, "--max-kb", "1", "--out", str(tmp_path / "x.json")])


def test_study_must_be_named_when_the_storage_holds_several(single, storage, tmp_path):
    make_study(storage, "another")
    with pytest.raises(SystemExit, match="holds 2 studies; pick one with --study: another, single"):
        main(["--storage", storage, "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit, match="'nope' is not in .*another, single"):
        main(["--storage", storage, "--study", "nope", "--out", str(tmp_path / "x.json")])


def test_missing_sqlite_file_is_not_created(tmp_path):
    with pytest.raises(SystemExit, match="no such file"):
        main(["--storage", f"sqlite:///{tmp_path / 'none.db'}", "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "none.db").exists()


def test_a_request_the_study_cannot_satisfy_is_a_pick_error(single):
    with pytest.raises(PickError, match=r"--trial 9: study 'single' has no such trial \(trials 0..4\)"):
        pick_trial(single, number=9)
