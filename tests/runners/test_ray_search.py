"""The search on Ray Tune (``--workers 2``) on a real local Ray and a real SQLite file: the same records as in
process, early stopping, the size cap, a killed worker, Ctrl-C, and alternating with the in-process runner."""
import logging
import os
import signal

import optuna
import pytest
from optuna.trial import TrialState

from runners import search
from search_engine import study as study_module
from search_engine.ray_driver import StudyDriver, ray_environment
from studies.attrs import SEEDS_ATTR
from studies.reader import finished
from tests.runners.test_search import TRIAL_ATTRS

pytestmark = pytest.mark.slow

RAY_ONLY_ATTRS = {"ray_trial", "worker"}  # which Tune trial and which host:pid trained it


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    """One local Ray for the module (its start costs seconds); ``run_on_ray`` uses it and leaves it up."""
    ray_environment()  # Ray's options as run_on_ray sets them, before this Ray starts
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


def run_search(tmp_path, export, *extra, workers=2, code=0):
    tmp_path.mkdir(exist_ok=True)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert search.main(["--data", str(export), "--storage", url, "--epochs", "1", "--val-fraction", "0.25",
                        "--workers", str(workers), *extra]) == code
    return optuna.load_study(study_name="keypoints", storage=url)


def test_two_workers_write_the_same_records_as_the_in_process_runner(tmp_path, tiny_export, isolated_cache):
    # The hand designs first, so that one worker and two run the same trials in the same order.
    on_ray = run_search(tmp_path / "ray", tiny_export, "--trials", "4", "--reference-first")
    in_process = run_search(tmp_path / "local", tiny_export, "--trials", "4", "--reference-first", workers=1)
    ran = on_ray.get_trials(states=(TrialState.COMPLETE,))
    assert len(ran) == finished(on_ray) == 4  # the other four hand designs still wait in the queue
    for ray_trial, local_trial in zip(ran, in_process.get_trials(states=(TrialState.COMPLETE,)), strict=True):
        assert ray_trial.number == local_trial.number
        assert ray_trial.params == local_trial.params
        assert ray_trial.user_attrs["baseline"] == local_trial.user_attrs["baseline"]
        assert set(ray_trial.user_attrs) - RAY_ONLY_ATTRS == set(local_trial.user_attrs)
        assert TRIAL_ATTRS <= set(ray_trial.user_attrs)
        assert list(ray_trial.intermediate_values) == [1] == list(local_trial.intermediate_values)
        assert ray_trial.user_attrs["history"] == [ray_trial.user_attrs["val_mean_px"]]
    assert len({t.user_attrs["worker"] for t in ran}) == 2  # two trials at once


def test_on_two_workers_the_hand_designs_run_beside_the_search(tmp_path, tiny_export, isolated_cache):
    study = run_search(tmp_path, tiny_export, "--trials", "4", "--no-fair-share")
    hand = [t for t in study.trials if "baseline" in t.user_attrs]
    sampled = [t for t in study.trials if "baseline" not in t.user_attrs]
    assert study.trials[0].user_attrs["baseline"] == "resnet8-linear" and sampled[0].number == 1
    # Never two hand designs at once: each starts after the one before it ended.
    assert all(b.datetime_start >= a.datetime_complete for a, b in zip(hand, hand[1:]))
    assert 1 <= len(hand) <= 3 and not [t for t in study.trials if t.state == TrialState.WAITING]


def test_a_trial_stopped_early_on_ray_is_pruned_with_its_intermediate_values(tmp_path, tiny_export,
                                                                            isolated_cache, monkeypatch):
    # A pruner that stops every trial at epoch 2 of 4: the driver must stop the Ray trial there.
    monkeypatch.setattr(study_module, "make_pruner",
                        lambda settings, early_stopping=True: optuna.pruners.ThresholdPruner(upper=0.0,
                                                                                              n_warmup_steps=2))
    # (Fair exploration's trials and the starting points never meet the pruner: leave them out to see every trial
    # meet it.)
    study = run_search(tmp_path, tiny_export, "--trials", "2", "--no-baselines", "--no-fair-share",
                       "--no-starting-point", "--epochs", "4")
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    for t in study.trials:
        assert sorted(t.intermediate_values) == [1, 2]
        assert t.user_attrs["status"] == "stopped" and t.user_attrs["epochs"] == 2
        assert t.user_attrs["history"] == [t.intermediate_values[1], t.intermediate_values[2]]
        assert t.user_attrs["val_mean_px"] == t.intermediate_values[2]


def test_oversize_candidates_are_recorded_and_never_reach_ray(tmp_path, tiny_export, isolated_cache):
    # At 50 KB all eight hand designs (69 and 76 KB) are over the cap; the ninth trial is sampled within it.
    study = run_search(tmp_path, tiny_export, "--trials", "9", "--max-kb", "50")
    oversize = [t for t in study.trials if t.user_attrs.get("status") == "oversize"]
    assert len(oversize) == 8
    for t in oversize:
        assert t.state == TrialState.PRUNED
        assert not {"ray_trial", "worker", "epochs", "history"} & set(t.user_attrs)
        assert (t.datetime_complete - t.datetime_start).total_seconds() < 1.0
    trained = study.trials[8]
    assert trained.state == TrialState.COMPLETE and RAY_ONLY_ATTRS <= set(trained.user_attrs)


def test_a_killed_worker_fails_its_trial_with_the_reason_and_the_search_goes_on(tmp_path, tiny_export,
                                                                               isolated_cache, monkeypatch):
    killed = []
    record = StudyDriver.on_result

    def kill_the_first_worker(driver, tune_id, result):
        stop = record(driver, tune_id, result)
        if not killed and result.get("epoch") == 1:  # the worker waits in tune.report: mid-trial
            killed.append(driver.running[tune_id].trial.number)
            os.kill(result["pid"], signal.SIGKILL)
        return stop

    monkeypatch.setattr(StudyDriver, "on_result", kill_the_first_worker)
    study = run_search(tmp_path, tiny_export, "--trials", "3", "--no-baselines", "--epochs", "2")
    lost = study.trials[killed[0]]
    assert lost.state == TrialState.FAIL
    assert lost.user_attrs["status"] == "crashed"
    assert "died" in lost.user_attrs["reason"]
    assert list(lost.intermediate_values) == [1]
    assert finished(study) == 3 and study.get_trials(states=(TrialState.RUNNING,)) == []
    assert [t.state for t in study.trials].count(TrialState.FAIL) == 1


def test_ctrl_c_stops_the_workers_and_leaves_the_study_resumable(tmp_path, tiny_export, isolated_cache,
                                                                 monkeypatch):
    record = StudyDriver.on_result

    def press_ctrl_c(driver, tune_id, result):
        if result.get("epoch") == 1 and not driver.interrupted:
            os.kill(os.getpid(), signal.SIGINT)
        return record(driver, tune_id, result)

    monkeypatch.setattr(StudyDriver, "on_result", press_ctrl_c)
    study = run_search(tmp_path, tiny_export, "--trials", "3", "--no-baselines", "--epochs", "30", code=130)
    assert study.get_trials(states=(TrialState.RUNNING,)) == []
    interrupted = [t for t in study.trials if t.user_attrs.get("status") == "interrupted"]
    assert interrupted and all(t.state == TrialState.FAIL for t in interrupted)
    assert all(len(t.intermediate_values) < 30 for t in interrupted)
    monkeypatch.undo()
    study = run_search(tmp_path, tiny_export, "--trials", "3", "--no-baselines")
    assert finished(study) == 3 and len(study.trials) == 3 + len(interrupted)


def test_in_process_and_ray_runs_alternate_on_one_study(tmp_path, tiny_export, isolated_cache):
    run_search(tmp_path, tiny_export, "--trials", "2", "--no-baselines", workers=1)
    run_search(tmp_path, tiny_export, "--trials", "4", "--no-baselines")
    study = run_search(tmp_path, tiny_export, "--trials", "5", "--no-baselines", workers=1)
    assert finished(study) == 5 and len(study.trials) == 5
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert all(TRIAL_ATTRS <= set(t.user_attrs) for t in complete)
    assert [RAY_ONLY_ATTRS <= set(t.user_attrs) for t in study.trials] == [False, False, True, True, False]


def test_on_ray_a_trial_that_beats_the_best_is_scored_by_two_seeds(tmp_path, tiny_export, isolated_cache):
    # Two trials start before either finishes: nothing to beat yet, so both are trained with a second seed.
    study = run_search(tmp_path, tiny_export, "--trials", "2", "--no-baselines", "--no-fair-share")
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2
    for trial in complete:
        seeds = trial.user_attrs[SEEDS_ATTR]
        assert len(seeds) == 2 and seeds[0] != pytest.approx(seeds[1])
        assert trial.value == trial.user_attrs["val_mean_px"] == pytest.approx(sum(seeds) / 2)
