import optuna

from analysis.study_data import full_budget, read_trials, row_trial, study_info
from studies.reader import best_feasible


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
    assert best_feasible(rows, study_info(study, url).max_bytes, trial_of=row_trial).number == 1


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


def test_rows_are_feasible_by_the_readers_rule(thin_study):
    # A stopped trial within the cap has an error but did not finish: not feasible, as in the export.
    study, url = thin_study
    cap = study_info(study, url).max_bytes
    assert {r.outcome: r.feasible(cap) for r in read_trials(study)} == {
        "ok": True, "stopped": False, "oversize": False, "diverged": False}
