"""Early stopping: successive halving at epochs 1, 3 and 9; the hand designs exempt and, once peers exist, not
competitors (objectives/rungs.py has the rule's own tests)."""
import optuna

from objectives.metrics import Metrics
from search_engine.settings import TrialSettings
from search_engine.study import make_pruner
from search_engine.trial import EpochReporter
from studies.attrs import BASELINE_ATTR

SETTINGS = TrialSettings(max_bytes=80 * 1024, max_epochs=9, rungs="epochs")


def curve_study(curves: list[list[float]]) -> optuna.Study:
    """A study whose finished trials have these learning curves (error per epoch, from epoch 1)."""
    study = optuna.create_study(pruner=make_pruner(SETTINGS))
    for curve in curves:
        should_prune_after(study, curve, finish=True)
    return study


def should_prune_after(study: optuna.Study, curve: list[float], finish: bool = False) -> bool:
    """Report the curve epoch by epoch, asking the pruner after each as ``EpochReporter`` does."""
    trial = study.ask()
    prune = False
    for epoch, error in enumerate(curve, start=1):
        trial.report(error, epoch)
        prune = trial.should_prune()
    if finish:
        study.tell(trial, curve[-1])
    return prune


def test_only_the_best_third_at_a_rung_goes_on():
    # Nine trials reached epoch 1 with errors 1..9 px: the best third (1, 2, 3) set the bar.
    study = curve_study([[float(e)] for e in range(1, 10)])
    assert not should_prune_after(study, [2.5])
    assert should_prune_after(study, [3.5])


def test_the_second_rung_is_at_epoch_three_not_two():
    study = curve_study([[1.0, 1.0, 1.0]] * 6 + [[9.0, 9.0, 9.0]] * 3)
    # Among the best at epoch 1, so it trains on; epoch 2 is not a rung, whatever its error.
    assert not should_prune_after(study, [1.0, 50.0])
    # At epoch 3 it is judged again, against the trials that reached epoch 3.
    assert should_prune_after(study, [1.0, 50.0, 50.0])


def test_early_stopping_off_or_multi_objective_never_prunes():
    assert isinstance(make_pruner(SETTINGS, early_stopping=False), optuna.pruners.NopPruner)
    multi = TrialSettings(max_bytes=80 * 1024, max_epochs=9, objectives=("error", "size"))
    assert isinstance(make_pruner(multi), optuna.pruners.NopPruner)


def metrics(mean_px: float) -> Metrics:
    return Metrics(mean_px, mean_px, (mean_px,) * 7, 0.0, 0.0, 0.0, 0.0)


def test_hand_designs_never_stop_and_do_not_lower_the_bar():
    study = optuna.create_study(pruner=make_pruner(SETTINGS))
    for error in (1.0, 2.0, 3.0):  # three sampled trials at epoch 1
        EpochReporter(study.ask(), SETTINGS, kb=10.0)(1, metrics(error))
    for _ in range(6):  # six hand designs, far behind: they train on, and are not competitors
        hand = study.ask()
        hand.set_user_attr(BASELINE_ATTR, "resnet8-linear")
        assert EpochReporter(hand, SETTINGS, kb=76.0)(1, metrics(40.0)) is False
    # Against the sampled trials alone (1, 2, 3 and itself) only the best survives; had the six hand
    # designs counted, 2.5 px would have been in the best third of ten.
    assert EpochReporter(study.ask(), SETTINGS, kb=10.0)(1, metrics(2.5)) is True
