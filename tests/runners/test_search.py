"""The search command end to end on a tiny export: records, the cap, divergence, resume, the dashboard."""
import io
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import pytest
from optuna.trial import TrialState

from runners import search
from search_engine.running import QuietExpectedFailures
from search_engine.trial import TrialDiverged
from search_space.config import Config
from search_space.space import trial_params
from search_space.start import STARTING_POINT
from studies.attrs import SEEDS_ATTR
from studies.reader import finished
from tests.conftest import REPO

pytestmark = pytest.mark.slow

TRIAL_ATTRS = {"family", "weight_bytes", "params", "macs", "epochs", "train_seconds", "val_mean_px",
               "val_median_px", "val_pck1", "val_pck2", "val_pck3", "val_heatmap_mse", "status", "config"}


def run_search(tmp_path, export, *extra):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    code = search.main(["--data", str(export), "--storage", url, "--epochs", "1", "--val-fraction", "0.25",
                        *extra])
    assert code == 0
    return url


def test_short_search_records_every_trial_attribute(tmp_path, tiny_export, isolated_cache):
    url = run_search(tmp_path, tiny_export, "--trials", "10", "--max-kb", "80", "--reference-first")
    study = optuna.load_study(study_name="keypoints", storage=url)
    assert finished(study) == 10
    baselines = {t.user_attrs["baseline"] for t in study.trials if "baseline" in t.user_attrs}
    assert baselines == {f"{n}-{h}{bn}" for n in ("resnet8", "unet8") for h in ("linear", "softmax")
                         for bn in ("", "-bn")}
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert complete and all(TRIAL_ATTRS <= set(t.user_attrs) for t in complete)
    assert all(t.user_attrs["weight_bytes"] <= 81_920 for t in complete)
    assert study.user_attrs["max_bytes"] == 81_920 and study.user_attrs["train_size"] > 0


def test_oversize_candidates_are_pruned_and_never_trained(tmp_path, tiny_export, isolated_cache):
    # At 50 KB both ResNet hand designs (76 KB) are over the cap.
    url = run_search(tmp_path, tiny_export, "--trials", "4", "--max-kb", "50", "--reference-first")
    study = optuna.load_study(study_name="keypoints", storage=url)
    oversize = [t for t in study.trials if t.user_attrs.get("status") == "oversize"]
    assert len(oversize) == 4  # the four ResNet designs run first
    for t in oversize:
        assert t.state == TrialState.PRUNED
        assert t.user_attrs["weight_bytes"] == 19_479 * 4
        assert "epochs" not in t.user_attrs and "history" not in t.user_attrs
        # (No wall-time bound here: a shared machine made one of these take 1.4 s once; about 0.1 s is typical.)


def test_a_diverging_trial_fails_with_its_reason_and_the_study_goes_on(tmp_path, tiny_export, isolated_cache,
                                                                       capsys):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    diverging = Config(family="unet", width=4, depth=2, optimizer="sgd", lr=1e8, momentum=0.9, batch_size=4,
                       weight_decay=1e-6)
    # Create the study the way the runner does, then put the diverging config first.
    run_search(tmp_path, tiny_export, "--trials", "1", "--no-baselines")
    study = optuna.load_study(study_name="keypoints", storage=url)
    study.enqueue_trial(trial_params(diverging))
    capsys.readouterr()
    optuna_log = io.StringIO()  # Optuna's own handler writes to the stderr of import time, out of capsys's reach
    handler = logging.StreamHandler(optuna_log)
    logging.getLogger("optuna").addHandler(handler)
    try:
        run_search(tmp_path, tiny_export, "--trials", "3", "--no-baselines")
    finally:
        logging.getLogger("optuna").removeHandler(handler)
    # Its progress line gives the reason; Optuna's warning and traceback for it are left out.
    assert "DIVERGED" in capsys.readouterr().out
    assert "Traceback" not in optuna_log.getvalue() and "failed" not in optuna_log.getvalue()
    study = optuna.load_study(study_name="keypoints", storage=url)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].params["lr"] == 1e8
    assert failed[0].user_attrs["status"] == "diverged"
    assert "loss became" in failed[0].user_attrs["reason"] or "not finite" in failed[0].user_attrs["reason"]
    assert finished(study) == 3 and failed[0].number < study.trials[-1].number


def test_rerunning_continues_the_study_to_the_target(tmp_path, tiny_export, isolated_cache):
    run_search(tmp_path, tiny_export, "--trials", "2", "--no-baselines")
    url = run_search(tmp_path, tiny_export, "--trials", "4", "--no-baselines")
    study = optuna.load_study(study_name="keypoints", storage=url)
    assert finished(study) == 4 and len(study.trials) == 4


def test_a_killed_search_resumes_and_retries_the_lost_trial(tmp_path, tiny_export, isolated_cache):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    command = [sys.executable, str(REPO / "runners" / "search.py"), "--data", str(tiny_export), "--storage", url,
               "--epochs", "30", "--val-fraction", "0.25", "--heartbeat", "1", "--no-baselines", "--trials", "3"]
    env = {**os.environ, "KEYPOINT_NAS_CACHE": str(isolated_cache)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                study = optuna.load_study(study_name="keypoints", storage=url)
                running = study.get_trials(states=(TrialState.RUNNING,))
                if running and running[0].user_attrs.get("history"):  # mid-training, an epoch done
                    break
            except KeyError:
                continue
        else:
            pytest.fail("the search never got a trial into training")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    lost = running[0].number
    time.sleep(2.5)  # past the grace period (2 x heartbeat)
    # The second run trains short trials so the test stays quick.
    command[command.index("--epochs") + 1] = "1"
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    study = optuna.load_study(study_name="keypoints", storage=url)
    assert study.get_trials(states=(TrialState.RUNNING,)) == []
    assert study.trials[lost].state == TrialState.FAIL
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == lost]
    assert len(retried) == 1 and retried[0].params == study.trials[lost].params
    assert finished(study) == 3


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def test_dashboard_serves_the_study_and_its_trial_attributes(tmp_path, tiny_export, isolated_cache):
    from optuna_dashboard import wsgi

    url = run_search(tmp_path, tiny_export, "--trials", "3", "--no-baselines")
    server = make_server("127.0.0.1", 0, wsgi(url), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with urllib.request.urlopen(f"{base}/api/studies", timeout=30) as response:
            studies = json.load(response)["study_summaries"]
        assert [s["study_name"] for s in studies] == ["keypoints"]
        with urllib.request.urlopen(f"{base}/api/studies/{studies[0]['study_id']}", timeout=30) as response:
            detail = json.load(response)
    finally:
        server.shutdown()
    assert len(detail["trials"]) == 3
    attrs = {a["key"] for t in detail["trials"] for a in t["user_attrs"]}
    assert TRIAL_ATTRS <= attrs


def test_a_trial_trained_to_the_last_epoch_completes(tmp_path, tiny_export, isolated_cache):
    # With one epoch every trial reaches the end: none may be recorded as stopped early.
    url = run_search(tmp_path, tiny_export, "--trials", "6", "--no-baselines")
    study = optuna.load_study(study_name="keypoints", storage=url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6


def test_sigterm_stops_cleanly_with_no_trial_left_running(tmp_path, tiny_export, isolated_cache):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    command = [sys.executable, str(REPO / "runners" / "search.py"), "--data", str(tiny_export), "--storage", url,
               "--epochs", "30", "--val-fraction", "0.25", "--no-baselines", "--trials", "3"]
    env = {**os.environ, "KEYPOINT_NAS_CACHE": str(isolated_cache)}
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            running = optuna.load_study(study_name="keypoints", storage=url).get_trials(states=(TrialState.RUNNING,))
        except KeyError:
            continue
        if running and running[0].user_attrs.get("history"):
            break
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    study = optuna.load_study(study_name="keypoints", storage=url)
    assert study.get_trials(states=(TrialState.RUNNING,)) == []
    cut_off = study.get_trials(states=(TrialState.FAIL,))
    assert [t.user_attrs["status"] for t in cut_off] == ["interrupted"]
    # One line says what happened; no traceback from Optuna for a stop the user asked for.
    output = log.read_text()
    assert "rerun the same command to continue" in output
    assert "Traceback" not in output and f"Trial {cut_off[0].number} failed" not in output


def test_continuing_a_study_on_another_split_is_refused(tmp_path, tiny_export, isolated_cache):
    url = run_search(tmp_path, tiny_export, "--trials", "1", "--no-baselines")
    with pytest.raises(SystemExit, match="new --study-name"):
        search.main(["--data", str(tiny_export), "--storage", url, "--epochs", "1", "--val-fraction", "0.5",
                     "--trials", "2", "--no-baselines"])
    assert len(optuna.load_study(study_name="keypoints", storage=url).trials) == 1


def test_without_data_the_search_runs_on_announced_synthetic_cones(tmp_path, isolated_cache, monkeypatch, capsys):
    # The README's main command has no --data: it must say so and run on generated cones (fewer here).
    monkeypatch.setattr("cones.load.SYNTHETIC_COUNT", 120)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert search.main(["--storage", url, "--epochs", "1", "--trials", "2", "--no-baselines"]) == 0
    assert "using 120 synthetic cones" in capsys.readouterr().out
    study = optuna.load_study(study_name="keypoints", storage=url)
    assert finished(study) == 2 and study.user_attrs["data"] == "synthetic"


def test_missing_data_is_one_line_and_no_study_is_created(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(SystemExit, match=r".*nowhere: no such directory"):
        search.main(["--data", str(tmp_path / "nowhere"), "--trials", "1", "--storage", storage])
    assert not (tmp_path / "s.db").exists()


def test_a_second_study_on_the_same_run_reuses_the_hand_designs(tmp_path, tiny_export, isolated_cache, capsys):
    url = run_search(tmp_path, tiny_export, "--trials", "8", "--study-name", "first", "--reference-first")
    capsys.readouterr()
    run_search(tmp_path, tiny_export, "--trials", "9", "--study-name", "second")
    assert "reused 8 hand designs' results" in capsys.readouterr().out
    first, second = (optuna.load_study(study_name=n, storage=url) for n in ("first", "second"))
    ran = {t.user_attrs["baseline"]: t for t in first.trials}
    reused = [t for t in second.trials if "baseline" in t.user_attrs]
    assert len(reused) == 8 and len(second.trials) == 9  # 8 copied, 1 sampled and trained
    for t in reused:
        origin = ran[t.user_attrs["baseline"]]
        assert t.user_attrs["reused_from"] == f"study first trial {origin.number}"
        assert (t.state, t.values, t.params) == (origin.state, origin.values, origin.params)
        assert t.user_attrs["train_seconds"] == origin.user_attrs["train_seconds"]
    # Another seed is another run: nothing is reused.
    url2 = search.main(["--data", str(tiny_export), "--storage", url, "--epochs", "1", "--val-fraction", "0.25",
                        "--trials", "1", "--study-name", "third", "--seed", "1", "--no-early-stopping"])
    third = optuna.load_study(study_name="third", storage=url)
    assert url2 == 0 and not any("reused_from" in t.user_attrs for t in third.trials)


def test_every_trial_records_which_rule_chose_it_and_fair_trials_appear(tmp_path, tiny_export, isolated_cache):
    url = run_search(tmp_path, tiny_export, "--trials", "10")
    study = optuna.load_study(study_name="keypoints", storage=url)
    chosen = [t.user_attrs["chosen_by"] for t in study.trials if "config" in t.user_attrs]
    # One worker: the hand designs run beside the search, every other trial; the first sampled trials are the
    # product's starting points.
    assert chosen[0::2] == ["hand design"] * 5
    assert chosen[1] == chosen[3] == "starting point" and study.trials[1].params == trial_params(STARTING_POINT)
    assert set(chosen[5::2]) <= {"sampler", "fair share"} and "fair share" in chosen
    assert not any(t.state == TrialState.WAITING for t in study.trials)  # none left queued at the end


def test_without_the_starting_point_the_sampler_chooses_the_first_trial(tmp_path, tiny_export, isolated_cache):
    url = run_search(tmp_path, tiny_export, "--trials", "2", "--no-starting-point", "--no-fair-share")
    chosen = [t.user_attrs["chosen_by"] for t in optuna.load_study(study_name="keypoints", storage=url).trials]
    assert chosen == ["hand design", "sampler"]


def test_a_trial_that_beats_the_best_is_scored_by_two_seeds_and_the_rest_by_one(tmp_path, tiny_export,
                                                                                 isolated_cache, capsys):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    confirmed = optuna.load_study(study_name="keypoints", storage=run_search(
        tmp_path / "a", tiny_export, "--trials", "3", "--no-baselines", "--no-fair-share"))
    assert "mean of 2 seeds: " in capsys.readouterr().out  # the closing table says the best is two seeds' mean
    one_seed = optuna.load_study(study_name="keypoints", storage=run_search(
        tmp_path / "b", tiny_export, "--trials", "3", "--no-baselines", "--no-fair-share", "--no-confirm"))
    best = math.inf
    for trial, alone in zip(confirmed.trials, one_seed.trials, strict=True):
        assert trial.params == alone.params and trial.state == alone.state == TrialState.COMPLETE
        assert SEEDS_ATTR not in alone.user_attrs
        first = alone.value  # the first seed's run is the one-seed study's: the same training
        if first < best:  # a new best (the first trial always is): trained again with the next seed
            seeds = trial.user_attrs[SEEDS_ATTR]
            assert seeds[0] == pytest.approx(first) and seeds[1] != pytest.approx(first)
            assert trial.value == trial.user_attrs["val_mean_px"] == pytest.approx(sum(seeds) / 2)
        else:
            assert SEEDS_ATTR not in trial.user_attrs and trial.value == pytest.approx(first)
        best = min(best, trial.value)


def optimize_logged(objective, n_trials: int) -> tuple[str, bool]:
    """(what Optuna's log says, whether Ctrl-C ended it) while ``objective`` runs under ``QuietExpectedFailures``."""
    study = optuna.create_study()
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger("optuna").addHandler(handler)
    interrupted = False
    try:
        with QuietExpectedFailures() as quiet:
            study.optimize(objective, n_trials=n_trials, catch=(TrialDiverged, ValueError), callbacks=[quiet])
    except KeyboardInterrupt:
        interrupted = True
    finally:
        logging.getLogger("optuna").removeHandler(handler)
    assert handler.filters == []  # the filter leaves with the block
    return log.getvalue(), interrupted


def test_a_diverged_trial_loses_optuna_s_warning_and_the_next_failure_keeps_it():
    def objective(trial):
        raise (TrialDiverged if trial.number == 0 else ValueError)(f"the error of trial {trial.number}")

    log, _ = optimize_logged(objective, 2)
    assert "Trial 0" not in log and "the error of trial 0" not in log
    assert "Trial 1 failed with parameters" in log and "ValueError: the error of trial 1" in log
    assert "Trial 1 failed with value None" in log


def test_an_interrupted_trial_loses_optuna_s_warning():
    def objective(trial):
        raise KeyboardInterrupt

    log, interrupted = optimize_logged(objective, 1)
    assert interrupted and log == ""


def test_data_twice_and_several_validation_teams_score_the_mean_of_their_errors(tmp_path, teams_exports,
                                                                                 isolated_cache, capsys):
    first, second = teams_exports
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert search.main(["--data", str(first), "--data", str(second), "--val-teams", "kb,kc", "--storage", url,
                        "--epochs", "1", "--trials", "2", "--no-baselines", "--no-confirm"]) == 0
    study = optuna.load_study(study_name="keypoints", storage=url)
    assert study.user_attrs["data"] == [str(first.resolve()), str(second.resolve())]
    assert study.user_attrs["val_teams"] == ["kb", "kc"]
    assert study.user_attrs["split"].endswith("scored as the mean of the 2 teams' errors")
    assert "train 24 crops / 6 frames (ka 24), val 48 crops / 12 frames (kb 24, kc 24)" in capsys.readouterr().out
    assert finished(study) == 2
