"""The search's successive halving: early trials judged against the hand designs, rungs in training seconds."""
import optuna
import pytest

from objectives.metrics import Metrics
from search_engine.rungs import Curve, Judgement, RungPruner, judge, rung_points, stops_at
from search_engine.settings import TrialSettings
from search_engine.study import make_pruner
from search_engine.trial import EpochReporter
from studies.attrs import BASELINE_ATTR, UNJUDGED_ATTR

HAND = [1.0, 2.0, 3.0, 30.0, 35.0, 40.0]  # two good hand designs, one fair, three collapsed (as on the shared data)


def test_before_peers_exist_a_trial_must_be_in_the_best_third_of_the_hand_designs():
    # Pool: six hand designs and itself, seven values: only the best two go on.
    assert stops_at(5.0, [], HAND, reduction_factor=3)
    assert not stops_at(1.5, [], HAND, reduction_factor=3)
    # Optuna's rule, with nothing known: the first trial at a rung always goes on.
    assert not stops_at(50.0, [], [], reduction_factor=3)


def test_once_enough_peers_reached_the_rung_the_hand_designs_no_longer_count():
    # Three peers at 4 px: the rung's own rule; eight hand designs at 0.5 px would have stopped it.
    assert not stops_at(4.0, [4.0, 4.0, 4.0], [0.5] * 8, reduction_factor=3)
    assert stops_at(4.0, [1.0, 1.0, 1.0], [], reduction_factor=3)


def test_in_seconds_a_slow_trial_is_compared_with_what_fast_ones_reached_in_the_same_time():
    # Three fast trials: 10 s an epoch, error falling 10, 5, 3, 2 px. A slow one: 30 s an epoch, 8 then 4 px.
    fast = [Curve((10.0, 5.0, 3.0, 2.0), (10.0, 20.0, 30.0, 40.0))] * 3
    slow = Curve((8.0,), (30.0,))
    # After one epoch it beats their epoch 1 (8 < 10): an epoch rule lets it go on ...
    assert judge(slow, fast, [], max_epochs=12, reduction_factor=3, unit="epochs").stop is None
    # ... but in 30 s they reached 3 px: it stops at the 30 s rung (3 x the median first epoch of 10 s).
    assert judge(slow, fast, [], max_epochs=12, reduction_factor=3, unit="seconds").stop == 30.0


def test_rungs_are_the_typical_first_epoch_times_one_three_nine():
    assert rung_points(12, 3, "epochs") == [1.0, 3.0, 9.0]
    assert rung_points(12, 3, "seconds", first_epoch_seconds=20.0) == [20.0, 60.0, 180.0]
    # A slow epoch can pass two rungs at once: it is judged at both.
    assert Curve((5.0, 4.0), (10.0, 70.0)).crossed([20.0, 60.0, 180.0], "seconds") == [20.0, 60.0]


def test_a_curve_without_seconds_takes_an_even_pace_from_its_total():
    trial = optuna.trial.create_trial(value=2.0, intermediate_values={1: 4.0, 2: 3.0, 3: 2.0},
                                      user_attrs={"train_seconds": 60.0})
    assert Curve.of(trial) == Curve((4.0, 3.0, 2.0), (20.0, 40.0, 60.0))
    assert Curve.of(optuna.trial.create_trial(value=2.0)) is None


def metrics(mean_px: float) -> Metrics:
    return Metrics(mean_px, mean_px, (mean_px,) * 7, 0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("rungs", ["seconds", "epochs"])
def test_the_pruner_judges_the_first_sampled_trials_by_the_hand_designs(rungs):
    settings = TrialSettings(max_bytes=80 * 1024, max_epochs=12, rungs=rungs)
    study = optuna.create_study(pruner=make_pruner(settings))
    assert isinstance(study.pruner, RungPruner)
    for name, error in zip("abcdef", HAND):  # the hand designs' first epoch, 10 s each
        hand = study.ask()
        hand.set_user_attr(BASELINE_ATTR, name)
        assert EpochReporter(hand, settings, kb=70.0)(1, metrics(error), seconds=10.0) is False  # exempt
    # The first sampled trial: collapsed after an epoch; Optuna's pruner would let it train on.
    assert EpochReporter(study.ask(), settings, kb=10.0)(1, metrics(30.0), seconds=10.0) is True
    assert EpochReporter(study.ask(), settings, kb=10.0)(1, metrics(1.5), seconds=10.0) is False


def test_optuna_rungs_keep_optunas_pruner():
    settings = TrialSettings(max_bytes=80 * 1024, max_epochs=12, rungs="optuna")
    assert isinstance(make_pruner(settings), optuna.pruners.SuccessiveHalvingPruner)
    with pytest.raises(ValueError, match="unit must be one of seconds, epochs"):
        RungPruner(12, unit="minutes")


def test_the_reporter_records_training_seconds_per_epoch():
    study = optuna.create_study(pruner=make_pruner(TrialSettings(max_bytes=80 * 1024, max_epochs=12)))
    trial = study.ask()
    reporter = EpochReporter(trial, TrialSettings(max_bytes=80 * 1024, max_epochs=12), kb=10.0)
    reporter(1, metrics(5.0), seconds=12.5)
    reporter(2, metrics(4.0), seconds=25.0)
    assert study.trials[0].user_attrs["seconds"] == [12.5, 25.0]


def test_a_trial_first_at_a_rung_is_judged_there_once_another_trial_reaches_it():
    alone = Curve((35.0,))
    first = judge(alone, [], [], max_epochs=12, reduction_factor=3, unit="epochs")
    assert first == Judgement(None, unjudged=(0,))  # nothing to judge by yet: the rung waits
    # One epoch later a hand design reached epoch 1 at 10 px: the trial's 35 px there stops it.
    later = Curve((35.0, 34.0))
    assert judge(later, [], [Curve((10.0,))], 12, 3, "epochs", unjudged=first.unjudged).stop == 1.0
    # Without company the rung keeps waiting; a trial better than the company goes on and the rung is done.
    assert judge(later, [], [], 12, 3, "epochs", unjudged=(0,)) == Judgement(None, unjudged=(0,))
    assert judge(Curve((5.0, 4.0)), [], [Curve((10.0,))], 12, 3, "epochs", unjudged=(0,)) == Judgement(None)


def test_a_waiting_rung_is_dropped_once_the_trial_reaches_the_next_rung():
    # Epoch 3 is the next rung: only it is judged (the trial leads there), not epoch 1's 35 px.
    curve = Curve((35.0, 20.0, 4.0))
    company = [Curve((10.0, 8.0, 6.0))]
    assert judge(curve, [], company, 12, 3, "epochs", unjudged=(0,)) == Judgement(None)


def test_the_pruner_judges_a_waiting_rung_when_the_hand_design_beside_it_gets_there():
    settings = TrialSettings(max_bytes=80 * 1024, max_epochs=12, rungs="epochs")
    study = optuna.create_study(pruner=make_pruner(settings))
    sampled = EpochReporter(study.ask(), settings, kb=10.0)
    hand_trial = study.ask()
    hand_trial.set_user_attr(BASELINE_ATTR, "unet8-softmax-bn")
    hand = EpochReporter(hand_trial, settings, kb=70.0)
    # The sampled trial finishes its first epoch a second before the hand design: Optuna would let it go on.
    assert sampled(1, metrics(35.0), seconds=16.0) is False
    assert study.trials[0].user_attrs[UNJUDGED_ATTR] == [0]
    assert hand(1, metrics(10.0), seconds=17.0) is False
    # At its next epoch the rung is judged against the hand design's epoch 1: 35 px against 10, it stops.
    assert sampled(2, metrics(34.0), seconds=32.0) is True
