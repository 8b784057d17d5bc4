"""benchmarks/search_ranking.py: picks the study's best complete trials within the cap (never a hand design),
and ranks their search error against their held-out errors; an int8 study's against their retrained int8 errors."""
from __future__ import annotations

import json
import math

import optuna
import pytest

import benchmarks.int8_vs_float
from analysis.study_data import read_trials
from benchmarks.search_ranking import format_int8_table, format_table, int8_table, main, ranking_table, top_trials
from cli.exits import run
from cones.synthetic import save_supervisely
from search_space.cap import max_bytes
from search_space.config import Config
from search_space.size import measure
from tests.benchmarks.test_generalisation import CFG, invented_teams

INT8_CAP = max_bytes(80)


def fake_study() -> optuna.Study:
    study = optuna.create_study()
    for number, (error, weight_bytes, baseline) in enumerate([(2.0, 50_000, None), (1.0, 90_000, None),
                                                              (1.5, 60_000, None), (0.5, 40_000, "unet8"),
                                                              (3.0, 70_000, None), (2.5, 30_000, None)]):
        trial = study.ask()
        cfg = Config(family="unet", width=4 + number, depth=2)
        attrs = {"config": cfg.to_dict(), "weight_bytes": weight_bytes, "status": "ok", "val_mean_px": error,
                 "epochs": 9}
        if baseline:
            attrs["baseline"] = baseline
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        study.tell(trial, error)
    return study


def test_top_trials_skip_oversize_and_hand_designs():
    study = fake_study()
    picked = top_trials(read_trials(study), study, 81_920, 3)
    assert [number for number, _, _ in picked] == [2, 0, 5]  # 1 is over the cap, 3 a hand design
    assert picked[0][2] == Config(family="unet", width=6, depth=2)


def test_ranking_correlates_search_error_with_the_other_teams():
    picked = [(2, 1.5, None), (0, 2.0, None), (5, 2.5, None)]
    # The search's own validation team (tuwr) agrees with its ranking; the other teams rank the trials the
    # other way round: the honest rho is the one on the other teams.
    teams = {"#2": (3.0, 3.0, 1.0), "#0": (2.0, 2.0, 5.0), "#5": (1.0, 1.0, 9.0)}  # a, b, tuwr
    rows = [{"model": name, "inference": "parabola",
             "teams": {t: {"mean_px": v} for t, v in zip(("a", "b", "tuwr"), values)},
             "mean": {"mean_px": sum(values) / 3}} for name, values in teams.items()]
    table = ranking_table(picked, {"teams": ["a", "b", "tuwr"], "rows": rows}, {"tuwr"})
    assert table["others"] == ["a", "b"]
    assert table["rho_others"] == pytest.approx(-1.0)
    assert table["rho_mean"] == pytest.approx(1.0)
    assert [t["others_px"] for t in table["trials"]] == [3.0, 2.0, 1.0]
    assert "tuwr*" in format_table(table, ["a", "b", "tuwr"], {"tuwr"})


def int8_study(storage: str) -> None:
    """An int8 study validated on team alpha: three complete trials of tiny U-Nets, one epoch each."""
    study = optuna.create_study(storage=storage, study_name="int8")
    for key, value in {"weights": "int8", "val_teams": ["alpha"], "max_bytes": INT8_CAP, "max_epochs": 1}.items():
        study.set_user_attr(key, value)
    for width, error in [(4, 2.0), (5, 1.0), (6, 1.5)]:
        trial = study.ask()
        cfg = CFG.replace(width=width)
        for key, value in {"config": cfg.to_dict(), "weight_bytes": measure(cfg, weights="int8").weight_bytes,
                           "status": "ok", "val_mean_px": error, "epochs": 1}.items():
            trial.set_user_attr(key, value)
        study.tell(trial, error)


def count_trainings(patch: pytest.MonkeyPatch) -> list[str]:
    """The held-out teams of every float training int8_vs_float.run_model starts from now on."""
    trained, train = [], benchmarks.int8_vs_float.run_fold

    def counting(data, cfg, recipe, team, *rest):
        trained.append(team)
        return train(data, cfg, recipe, team, *rest)

    patch.setattr(benchmarks.int8_vs_float, "run_fold", counting)
    return trained


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory):
    """The int8 study ranked once (1 epoch of float training, 1 of fine-tuning), in a cache of its own."""
    folder = tmp_path_factory.mktemp("search_ranking_int8")
    save_supervisely(invented_teams(), folder / "export")
    storage = f"sqlite:///{folder / 'int8.db'}"
    int8_study(storage)
    argv = ["--storage", storage, "--data", str(folder / "export"), "--top", "3", "--qat-epochs", "1",
            "--threads", "1"]
    with pytest.MonkeyPatch.context() as patch:  # module scope: no function-scoped monkeypatch
        patch.setenv("KEYPOINT_NAS_CACHE", str(folder / "cache"))
        trained = count_trainings(patch)
        assert main([*argv, "--json", str(folder / "rank.json"), "--png", str(folder / "rank.png")]) == 0
    return {"folder": folder, "argv": argv, "trained": trained, "table": json.loads((folder / "rank.json").read_text())}


@pytest.fixture()
def int8_cache(int8_run, monkeypatch):
    monkeypatch.setenv("KEYPOINT_NAS_CACHE", str(int8_run["folder"] / "cache"))


def test_an_int8_study_is_ranked_by_retrained_int8_models_within_its_cap(int8_run):
    table = int8_run["table"]
    assert table["teams"] == ["alpha"] and int8_run["trained"] == ["alpha"] * 3  # the study's validation team
    assert [t["trial"] for t in table["trials"]] == [1, 2, 0]
    for row, fold in zip(table["trials"], table["folds"]):
        assert fold["status"] == "ok" and fold["weights"] == "int8"
        assert row["int8_px"] == fold["onnx"]["mean_px"] and math.isfinite(row["int8_px"])
        assert row["float_px"] == fold["float_torch_mean_px"]
        assert row["weight_bytes"] == fold["weight_bytes"] <= INT8_CAP
        assert row["weight_bytes"] < measure(Config.from_dict(fold["config"])).weight_bytes  # not float32 bytes


def test_the_int8_ranking_is_a_spearman_rho_and_draws_its_scatter(int8_run):
    table = int8_run["table"]
    for key in ("rho_int8", "rho_float"):
        assert -1 <= table[key] <= 1
    assert 0 <= table["p_int8"] <= 1 and table["qat_epochs"] == 1 and table["epochs"] == 1
    assert (int8_run["folder"] / "rank.png").stat().st_size > 0
    assert "search error vs retrained int8" in format_int8_table(table)


def test_a_second_ranking_reads_the_float_trainings_from_the_cache(int8_run, int8_cache, monkeypatch):
    trained = count_trainings(monkeypatch)
    assert main([*int8_run["argv"], "--qat-epochs", "0"]) == 0
    assert trained == []


def test_an_unknown_team_is_named_beside_the_datas_teams(int8_run, int8_cache, capsys):
    assert run(lambda: main([*int8_run["argv"], "--teams", "alpha,zulu"]), "search_ranking") == 2
    error = capsys.readouterr().err
    assert "--teams zulu: not a team of --data" in error and "alpha, bravo, charlie" in error
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1


def test_teams_are_refused_for_a_float32_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'float.db'}"
    optuna.create_study(storage=storage, study_name="float")
    with pytest.raises(SystemExit, match="--teams alpha: float is a float32 study"):
        main(["--storage", storage, "--data", str(tmp_path / "none"), "--teams", "alpha"])


def test_a_diverged_int8_run_ranks_last_with_its_reason():
    picked = [(2, 1.0, CFG), (0, 2.0, CFG), (5, 3.0, CFG)]
    folds = [{"trial": number, "team": "a", "status": "ok", "float_torch_mean_px": px, "onnx": {"mean_px": px},
              "weight_bytes": 1000} for number, px in [(2, 1.0), (0, 2.0)]]
    folds.append({"trial": 5, "team": "a", "status": "diverged", "float_torch_mean_px": 3.0,
                  "reason": "quantization-aware loss became nan in epoch 1"})
    table = int8_table(picked, folds, ["a"])
    assert table["trials"][2]["int8_px"] == math.inf and table["rho_int8"] == pytest.approx(1.0)
    assert "diverged: quantization-aware loss became nan" in format_int8_table({**table, "qat_epochs": 1})
