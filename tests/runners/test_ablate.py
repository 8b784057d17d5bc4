"""runners/ablate.py on a tiny synthetic export and a search study in a temporary SQLite file: the ablation's own
study and table, resuming, and bad input."""
from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

import runners.ablate as ablate
from cli.exits import run
from objectives.train import train as real_train
from search_engine.ablation import variants
from search_space.cap import max_bytes
from search_space.config import Config
from search_space.size import measure

BEST = Config(family="unet", width=4, depth=2, head="softmax", batch_size=8)
FAST = ["--epochs", "1", "--seeds", "1", "--threads", "1"]


def add_trial(study: optuna.Study, cfg: Config, error: float, state=TrialState.COMPLETE) -> None:
    attrs = {"config": cfg.to_dict(), "weight_bytes": measure(cfg).weight_bytes, "status": "ok", "epochs": 2,
             "val_mean_px": error}
    study.add_trial(optuna.trial.create_trial(state=state, value=error if state == TrialState.COMPLETE else None,
                                              user_attrs=attrs))


@pytest.fixture
def searched(tmp_path, tiny_export, isolated_cache) -> str:
    """A storage holding study 'search' on the tiny export (frame split, a quarter of the frames held out):
    its best feasible trial is BEST; a better one is over the cap."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="search", storage=storage)
    for key, value in {"data": str(tiny_export), "val_teams": None, "val_fraction": 0.25, "seed": 0,
                       "max_bytes": max_bytes(80), "max_epochs": 2}.items():
        study.set_user_attr(key, value)
    add_trial(study, BEST, 3.0)
    add_trial(study, Config(family="resnet", width=16, depth=3), 1.0)  # over the cap
    add_trial(study, Config(family="resnet", width=4, depth=1), 5.0)
    return storage


def ablation(storage: str, name: str = "search-ablation") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def test_a_tiny_ablation_writes_its_study_and_table(searched, tmp_path, capsys):
    out = tmp_path / "ablation.json"
    assert ablate.main(["--study", "search", "--storage", searched, *FAST, "--variants", "batch_norm,head=linear",
                        "--json", str(out)]) == 0
    trials = ablation(searched).get_trials()
    assert [(t.params["variant"], t.params["seed"], t.state) for t in trials] == [
        ("best", 0, TrialState.COMPLETE), ("batch_norm=True", 0, TrialState.COMPLETE),
        ("head=linear", 0, TrialState.COMPLETE)]
    assert trials[1].user_attrs["config"] == BEST.replace(batch_norm=True).to_dict()
    table = json.loads(out.read_text())
    assert table["source"] == "study search trial 0" and table["epochs"] == 1 and table["seeds"] == [0]
    assert [row["variant"] for row in table["rows"]] == ["best", "batch_norm=True", "head=linear"]
    assert table["rows"][0]["mean_px"] == pytest.approx(trials[0].value)
    assert table["rows"][1]["verdict"].startswith("cannot tell: one seed")
    printed = capsys.readouterr().out
    assert "[3/3] head=linear seed 0:" in printed and "best so far" in printed and "left" in printed
    assert "held out: 25% of the frames" in printed


def counting_train(monkeypatch) -> list:
    calls = []

    def counted(cfg, *args, **kwargs):
        calls.append((cfg, kwargs["seed"]))
        return real_train(cfg, *args, **kwargs)

    monkeypatch.setattr(ablate, "train", counted)
    return calls


def test_rerunning_trains_only_the_runs_not_finished(searched, monkeypatch, capsys):
    command = ["--study", "search", "--storage", searched, "--epochs", "1", "--threads", "1", "--variants",
               "optimizer=sgd"]
    ablate.main(command + ["--seeds", "1"])
    calls = counting_train(monkeypatch)
    assert ablate.main(command + ["--seeds", "1"]) == 0 and calls == []
    assert "2 of 2 runs finished earlier, 0 to train" in capsys.readouterr().out
    assert ablate.main(command + ["--seeds", "2"]) == 0
    assert sorted(seed for _, seed in calls) == [1, 1]
    assert len(ablation(searched).get_trials()) == 4


def test_an_interrupted_run_is_trained_again_on_the_rerun(searched, monkeypatch):
    command = ["--study", "search", "--storage", searched, *FAST, "--variants", "batch_norm"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ablate, "train", interrupted)
    assert ablate.main(command) == 130
    assert ablation(searched).get_trials()[0].user_attrs["status"] == "interrupted"
    calls = counting_train(monkeypatch)
    assert ablate.main(command) == 0 and len(calls) == 2
    # the cut-off run stays FAIL; the queued one and a new run of the cut-off pair trained
    assert [t.state for t in ablation(searched).get_trials()] == [TrialState.FAIL, TrialState.COMPLETE,
                                                                   TrialState.COMPLETE]


def test_list_prints_the_variants_and_trains_nothing(searched, capsys):
    assert ablate.main(["--study", "search", "--storage", searched, "--list"]) == 0
    printed = capsys.readouterr().out
    assert "ablation of study search trial 0: unet w4 d2 no-bn softmax" in printed
    assert "family=resnet" in printed and "batch_size=64" in printed and "3.000 px in the search" in printed
    assert "search-ablation" not in optuna.get_all_study_names(searched)


def test_a_config_file_is_ablated_on_its_split(tmp_path, tiny_export, isolated_cache):
    config = tmp_path / "best.json"
    config.write_text(json.dumps({"config": BEST.to_dict(), "data": {"val_fraction": 0.25, "seed": 0}}))
    storage = f"sqlite:///{tmp_path / 'new.db'}"
    assert ablate.main(["--config", str(config), "--storage", storage, "--data", str(tiny_export), *FAST,
                        "--variants", "head=linear"]) == 0
    study = ablation(storage, "best-ablation")
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2
    assert study.user_attrs["holdout"] == {"val_teams": None, "val_fraction": 0.25, "seed": 0}


def fails(capsys, *argv: str) -> str:
    """The one line a bad command prints; the exit code must be 2."""
    assert run(lambda: ablate.main(list(argv)), "ablate") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_bad_input_is_one_line_with_exit_code_2(searched, tmp_path, capsys):
    assert "'nosuch' is not in" in fails(capsys, "--study", "nosuch", "--storage", searched)
    assert "no such file" in fails(capsys, "--study", "search", "--storage", f"sqlite:///{tmp_path / 'none.db'}")
    assert "'colour' is not a decision" in fails(capsys, "--study", "search", "--storage", searched,
                                                 "--variants", "colour")
    (tmp_path / "taken.json").write_text("{}")
    assert "already exists" in fails(capsys, "--study", "search", "--storage", searched,
                                     "--json", str(tmp_path / "taken.json"))
    with pytest.raises(SystemExit) as exited:
        ablate.main(["--study", "search", "--storage", searched, "--seeds", "0"])
    assert exited.value.code == 2 and "--seeds: must be an integer >= 1, got 0" in capsys.readouterr().err


def test_a_study_without_a_feasible_trial_is_refused(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'empty.db'}"
    study = optuna.create_study(study_name="empty", storage=storage)
    add_trial(study, BEST, 3.0, state=TrialState.PRUNED)
    assert "no feasible trial in study 'empty'" in fails(capsys, "--study", "empty", "--storage", storage)


def test_a_continued_ablation_must_keep_its_setting(searched, capsys):
    ablate.main(["--study", "search", "--storage", searched, *FAST, "--variants", "batch_norm"])
    err = fails(capsys, "--study", "search", "--storage", searched, "--epochs", "2", "--seeds", "1", "--variants",
                "batch_norm")
    assert "was run with another epochs" in err and "--name NEW" in err
    assert "is an ablation" in fails(capsys, "--study", "search-ablation", "--storage", searched)


def without_interactions(best: Config, cap: int, weights: str = "float32"):
    """``search_engine.ablation.variants`` as it was before the interaction variants."""
    found, skipped = variants(best, cap, weights)
    return [v for v in found if v.decision != "interaction"], skipped


def test_a_continued_ablation_may_gain_variants(searched, monkeypatch):
    monkeypatch.setattr(ablate, "variants", without_interactions)  # the ablation an earlier version ran
    assert ablate.main(["--study", "search", "--storage", searched, *FAST, "--variants", "batch_norm"]) == 0
    old = list(ablation(searched).user_attrs["variants"])
    monkeypatch.setattr(ablate, "variants", variants)
    gained = "family=resnet+batch_norm=True"
    assert ablate.main(["--study", "search", "--storage", searched, *FAST, "--variants", gained]) == 0
    study = ablation(searched)
    new = [v.name for v in variants(BEST, max_bytes(80))[0] if v.decision == "interaction"]
    assert gained in new and list(study.user_attrs["variants"]) == old + new
    run = study.get_trials()[-1]
    assert (run.state, run.user_attrs["variant"]) == (TrialState.COMPLETE, gained)
    assert "variant" not in run.params  # Optuna keeps the choices the parameter's first runs had


def test_a_continued_ablation_whose_variant_changed_its_config_is_refused(searched, capsys):
    ablate.main(["--study", "search", "--storage", searched, *FAST, "--variants", "batch_norm"])
    study = ablation(searched)
    configs = study.user_attrs["variants"]
    study.set_user_attr("variants", {**configs, "batch_norm=True": {**configs["batch_norm=True"], "lr": 0.5}})
    err = fails(capsys, "--study", "search", "--storage", searched, *FAST, "--variants", "batch_norm")
    assert "another config of variant batch_norm=True" in err and "--name NEW" in err


def test_an_int8_studys_best_is_ablated_under_the_int8_cap(tmp_path, tiny_export, isolated_cache):
    # 80,102 bytes in int8 and 308,956 in float32: an int8 study's best, once refused as "over the cap".
    best = Config(family="resnet", width=8, depth=3, head="softmax", batch_size=8)
    assert measure(best, weights="int8").weight_bytes <= max_bytes(80) < measure(best).weight_bytes
    storage = f"sqlite:///{tmp_path / 'int8.db'}"
    study = optuna.create_study(study_name="int8", storage=storage)
    for key, value in {"data": str(tiny_export), "val_teams": None, "val_fraction": 0.25, "seed": 0,
                       "max_bytes": max_bytes(80), "max_epochs": 2, "weights": "int8"}.items():
        study.set_user_attr(key, value)
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=2.0, user_attrs={
        "config": best.to_dict(), "weight_bytes": measure(best, weights="int8").weight_bytes, "status": "ok",
        "epochs": 2, "val_mean_px": 2.0}))
    out = tmp_path / "ablation.json"
    assert ablate.main(["--study", "int8", "--storage", storage, *FAST, "--variants", "batch_norm",
                        "--json", str(out)]) == 0
    runs = ablation(storage, "int8-ablation").get_trials()
    assert [t.state for t in runs] == [TrialState.COMPLETE] * 2
    assert all(t.user_attrs["weight_bytes"] == measure(Config.from_dict(t.user_attrs["config"]),
                                                       weights="int8").weight_bytes for t in runs)
    assert all("val_float32_mean_px" in t.user_attrs for t in runs)  # scored in int8, as the study scores a trial
    table = json.loads(out.read_text())
    assert table["weights"] == "int8" and table["rows"][0]["weight_bytes"] <= max_bytes(80)
