import optuna
import pytest

from analysis.study_data import StudyNotFound, best_feasible, full_budget, open_study, read_trials, study_info


def test_missing_sqlite_file_is_named_and_not_created(tmp_path):
    url = f"sqlite:///{tmp_path}/nothing.db"
    with pytest.raises(StudyNotFound, match="nothing.db"):
        open_study(url, None)
    assert not (tmp_path / "nothing.db").exists()


def test_empty_storage_names_the_url(tmp_path):
    url = f"sqlite:///{tmp_path}/empty.db"
    optuna.create_study(storage=url, study_name="x")
    optuna.delete_study(study_name="x", storage=url)
    with pytest.raises(StudyNotFound, match=f"no study in {url}"):
        open_study(url, None)


def test_several_studies_need_a_name(tmp_path, build):
    _, url = build.new_study(tmp_path, multi=False, name="a")
    build.new_study(tmp_path, multi=True, name="b")
    with pytest.raises(StudyNotFound, match="pick one with --study: a, b"):
        open_study(url, None)
    with pytest.raises(StudyNotFound, match="no study 'c'.*a, b"):
        open_study(url, "c")
    assert open_study(url, "b").study_name == "b"


def test_rows_follow_the_runner_format(thin_study):
    study, url = thin_study
    rows = {r.outcome: r for r in read_trials(study)}
    assert set(rows) == {"ok", "stopped", "oversize", "diverged"}
    assert rows["ok"].error == 4.1 and rows["ok"].baseline == "resnet8-linear"
    assert rows["stopped"].error == 8.0 and rows["stopped"].state == "PRUNED"
    assert rows["oversize"].error is None and rows["oversize"].size_kb == 200
    assert rows["diverged"].error is None and rows["diverged"].state == "FAIL"
    info = study_info(study, url)
    assert info.max_kb == 80 and info.max_epochs == 20


def test_best_feasible_skips_oversize_and_stopped(build, multi):
    study, url = build.new_study(None, multi)
    build.add_trial(study, "ok", kb=50, error=3.0)
    build.add_trial(study, "ok", kb=20, error=2.5)
    build.add_trial(study, "stopped", kb=10, error=1.0)
    build.add_trial(study, "oversize", kb=100)
    rows = read_trials(study)
    assert best_feasible(rows, study_info(study, url).max_bytes).number == 1


def test_full_budget_leaves_out_short_runs(build):
    study, _ = build.new_study(None, multi=False)
    build.add_trial(study, "ok", kb=50, error=3.0)
    build.add_trial(study, "ok", kb=50, error=3.0, epochs=5)
    assert [r.number for r in full_budget(read_trials(study), 20)] == [0]


def test_a_fail_without_status_is_a_crash_not_a_divergence(build):
    study, _ = build.new_study(None, multi=False)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={"weight_bytes": 4096}))
    (row,) = read_trials(study)
    assert row.outcome == "failed" and row.error is None and row.size_kb == 4
