"""A trial that beats the study's best is scored by two seeds' mean: which trials are, and what they record
(the search runs it end to end: tests/runners/test_search.py and test_ray_search.py)."""
import dataclasses
import math

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from objectives.metrics import Metrics
from objectives.train import TrainResult
from search_engine.confirm import confirm_below, confirmed, confirms
from search_engine.settings import TrialSettings
from studies.attrs import BASELINE_ATTR, SEEDS_ATTR

SETTINGS = TrialSettings(max_bytes=80 * 1024, max_epochs=12)


def metrics(mean: float, per_keypoint: float) -> Metrics:
    return Metrics(mean, mean / 2, (per_keypoint,) * 7, 0.5, 0.8, 0.9, mean / 100)


def result(mean: float, status: str = "ok", seconds: float = 10.0) -> TrainResult:
    return TrainResult(status, metrics(mean, mean + 1), epochs=12, train_seconds=seconds, history=[9.0, mean],
                       reason="loss became nan in epoch 3" if status == "diverged" else "")


def study_with(*values: float) -> optuna.Study:
    study = optuna.create_study()
    for value in values:
        study.add_trial(create_trial(value=value, state=TrialState.COMPLETE))
    study.add_trial(create_trial(state=TrialState.PRUNED, intermediate_values={1: 0.1}))  # never a bar
    return study


def test_the_bar_is_the_best_complete_trial_and_a_first_trial_always_passes():
    assert confirm_below(study_with(2.0, 1.5, 3.0).ask(), SETTINGS) == 1.5
    assert confirm_below(study_with().ask(), SETTINGS) == math.inf


@pytest.mark.parametrize("settings", [
    dataclasses.replace(SETTINGS, confirm=False),  # --no-confirm
    dataclasses.replace(SETTINGS, objectives=("error", "size")),  # no single best to beat
    dataclasses.replace(SETTINGS, weights="int8"),  # scored after quantization, one seed
])
def test_no_trial_is_confirmed_where_there_is_no_single_float_best(settings):
    assert confirm_below(study_with(1.5).ask(), settings) is None


def test_a_hand_design_is_scored_with_one_seed_as_the_reference():
    trial = study_with(1.5).ask()
    trial.set_user_attr(BASELINE_ATTR, "unet8-softmax-bn")
    assert confirm_below(trial, SETTINGS) is None


def test_only_a_trained_trial_that_beats_the_bar_is_trained_again():
    assert confirms(result(1.4), 1.5)
    assert not confirms(result(1.5), 1.5)  # a tie is no new best
    assert not confirms(result(1.4, status="diverged"), math.inf)
    assert not confirms(result(1.4, status="stopped"), math.inf)
    assert not confirms(result(1.4), None)


def test_a_confirmed_trial_scores_the_two_seeds_mean_and_records_each():
    trial = optuna.create_study().ask()
    both = confirmed(trial, result(1.2, seconds=30.0), result(1.6, seconds=40.0), seed=0)
    assert both.status == "ok"
    assert both.metrics.mean_px == pytest.approx(1.4)
    assert both.metrics.per_keypoint_px == pytest.approx((2.4,) * 7)  # each keypoint's mean too
    assert both.metrics.heatmap_mse == pytest.approx(0.014)
    assert both.train_seconds == 70.0  # what the trial cost
    assert both.history == [9.0, 1.2]  # the learning curve the rungs judged: the first seed's
    assert trial.user_attrs[SEEDS_ATTR] == [1.2, 1.6]


def test_a_second_seed_that_diverges_makes_the_trial_diverged_and_says_so():
    trial = optuna.create_study().ask()
    both = confirmed(trial, result(1.2), result(math.inf, status="diverged"), seed=3)
    assert both.status == "diverged"
    assert both.reason == "seed 4: loss became nan in epoch 3 (seed 3: 1.200 px)"
    assert trial.user_attrs[SEEDS_ATTR] == [1.2, math.inf]
