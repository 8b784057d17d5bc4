"""The pruning replay must decide as the search's own pruner does, or its figures for other rules mean nothing."""
import random

import optuna
import pytest
from optuna.trial import TrialState

from benchmarks.pruning_replay import Rule, replay, replay_reference_bar
from search_engine.settings import TrialSettings
from search_engine.study import make_pruner
from studies.attrs import BASELINE_ATTR

SETTINGS = TrialSettings(max_bytes=80 * 1024, max_epochs=9, rungs="optuna")


def run_study(curves: list[list[float]], settings: TrialSettings = SETTINGS, hand: list[list[float]] = (),
              pace: list[float] | None = None) -> optuna.Study:
    """Report each curve epoch by epoch to the search's pruner, stopping where it says, as EpochReporter does
    (the ``hand`` designs' curves first, never asking; ``pace``: each curve's seconds per epoch)."""
    study = optuna.create_study(pruner=make_pruner(settings))
    for number, curve in enumerate([*hand, *curves]):
        trial = study.ask()
        if number < len(hand):
            trial.set_user_attr(BASELINE_ATTR, f"hand{number}")
        history, seconds = [], []
        for epoch, error in enumerate(curve, start=1):
            history.append(error)
            seconds.append(epoch * (pace[number] if pace else 10.0))
            trial.set_user_attr("seconds", seconds)
            trial.report(error, epoch)
            if number < len(hand):
                continue
            if epoch < len(curve) and trial.should_prune():
                break
        trial.set_user_attr("history", history)
        study.tell(trial, history[-1] if len(history) == len(curve) else None,
                   state=TrialState.COMPLETE if len(history) == len(curve) else TrialState.PRUNED)
    return study


def test_replaying_the_search_rule_reproduces_the_pruner():
    rng = random.Random(0)
    curves = [[rng.uniform(1, 30) / (1 + 0.3 * e * rng.random()) for e in range(9)] for _ in range(60)]
    study = run_study(curves)
    trials = study.trials
    result = replay(trials, Rule(3), max_epochs=9)

    assert result.epochs == sum(len(t.user_attrs["history"]) for t in trials)
    assert result.kept == tuple(t.number for t in trials if t.state == TrialState.COMPLETE)
    assert 0 < len(result.kept) < 60 and result.unknown == 0


@pytest.mark.parametrize("unit", ["epochs", "seconds"])
def test_replaying_todays_rule_reproduces_its_pruner(unit):
    rng = random.Random(1)
    curves = [[rng.uniform(1, 30) / (1 + 0.3 * e * rng.random()) for e in range(9)] for _ in range(40)]
    hand = [[rng.uniform(2, 40)] * 9 for _ in range(6)]
    pace = [rng.choice([5.0, 10.0, 30.0]) for _ in range(46)]
    study = run_study(curves, TrialSettings(max_bytes=80 * 1024, max_epochs=9, rungs=unit), hand, pace)
    sampled, references = study.trials[6:], study.trials[:6]
    result = replay(sampled, Rule(3, unit=unit), max_epochs=9, references=references)

    assert result.epochs == sum(len(t.user_attrs["history"]) for t in sampled)
    assert result.kept == tuple(t.number for t in sampled if t.state == TrialState.COMPLETE)
    assert 0 < len(result.kept) < 40 and result.unknown == 0


def test_where_a_rule_would_go_past_the_recorded_curve_the_trial_stops_there_and_is_counted():
    # Three good trials, then one the pruner stopped at epoch 1. Competing with the last trial only (itself),
    # it would go on, but the study holds no epoch 2 for it.
    trials = run_study([[1.0] * 9] * 3 + [[5.0] * 9]).trials
    assert len(trials[3].user_attrs["history"]) == 1
    result = replay(trials, Rule(3, window=1), max_epochs=9)
    assert result.unknown == 1 and result.epochs == 3 * 9 + 1 and result.kept == (0, 1, 2)


def test_the_reference_bar_replay_stops_the_collapsed_curve_and_keeps_the_slow_starter():
    curves = [[6.0, 4.0, 3.0, 2.5], [30.0, 28.0, 27.0, 26.0], [9.0, 5.0, 2.8, 2.0]]
    trials = []
    for number, curve in enumerate(curves):
        trial = optuna.trial.create_trial(value=curve[-1], user_attrs={"history": curve})
        trial.number = number
        trials.append(trial)
    stopped, saved = replay_reference_bar(trials, 3.0)
    assert stopped == [1] and saved == 2  # 28 px at epoch 2 is 7x trial 0's 4 px; trial 2 is only 1.25x behind
