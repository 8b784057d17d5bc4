import datetime
import re

import optuna
import tqdm.std
from optuna.trial import TrialState, create_trial

from search_engine.progress import Progress, milestones, search_minutes


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _finish(study: optuna.Study, progress: Progress, clock: Clock, seconds: float, error: float) -> None:
    clock.now += seconds
    study.add_trial(create_trial(value=error, user_attrs={"weight_bytes": 40_000, "val_mean_px": error}))
    progress(study, study.trials[-1])


def _seconds_left(progress: Progress) -> float:
    meter = progress.bar.format_dict
    rate = meter["rate"] or (meter["n"] - meter["initial"]) / meter["elapsed"]  # tqdm's own fallback
    return (meter["total"] - meter["n"]) / rate


def test_time_left_follows_recent_trials_not_the_slow_hand_designs(monkeypatch):
    # A study opens with full-length hand designs; the sampled trials after them mostly stop early. The
    # time left must follow the recent pace (10 s a trial), not the run's average (38 s a trial).
    clock = Clock()
    monkeypatch.setattr(tqdm.std, "time", clock)
    study = optuna.create_study()
    progress = Progress(study, target=30, max_bytes=81_920)
    for _ in range(8):
        _finish(study, progress, clock, seconds=80, error=20.0)
    for _ in range(12):
        _finish(study, progress, clock, seconds=10, error=5.0)

    assert progress.bar.n == 20
    assert 80 < _seconds_left(progress) < 150  # 10 trials left at about 10 s each; the average says 380 s
    assert "best 5.00 px" in str(progress.bar)
    progress.close()


def test_progress_counts_trials_of_an_earlier_run(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(tqdm.std, "time", clock)
    study = optuna.create_study()
    for _ in range(5):
        study.add_trial(create_trial(value=3.0, user_attrs={"weight_bytes": 40_000, "val_mean_px": 3.0}))
    progress = Progress(study, target=10, max_bytes=81_920)
    _finish(study, progress, clock, seconds=10, error=2.0)

    assert progress.bar.n == 6
    assert "best 2.00 px (#5)" in str(progress.bar)
    progress.close()


def _ran(trial, start_min: float, stop_min: float, number: int):
    origin = datetime.datetime(2026, 1, 1)
    trial.number = number
    trial.datetime_start = origin + datetime.timedelta(minutes=start_min)
    trial.datetime_complete = origin + datetime.timedelta(minutes=stop_min)
    return trial


def _trained(state, error, epochs, **attrs):
    value = error if state == TrialState.COMPLETE else None
    return create_trial(state=state, value=value, user_attrs={"val_mean_px": error, "epochs": epochs, **attrs})


def test_closing_lines_give_epochs_saved_and_search_time_to_each_milestone():
    # Two hand designs, an oversize and a stopped trial, one cut off by Ctrl-C, then a 60-minute pause
    # before the rerun that continued the study: the pause is not search time.
    trials = [
        _ran(_trained(TrialState.COMPLETE, 6.0, 10, baseline="a"), 0, 10, 0),
        _ran(_trained(TrialState.COMPLETE, 8.0, 10, baseline="b"), 10, 20, 1),
        _ran(create_trial(state=TrialState.PRUNED, user_attrs={"status": "oversize"}), 20, 20, 2),
        _ran(_trained(TrialState.PRUNED, 30.0, 1, status="stopped"), 20, 21, 3),
        _ran(create_trial(state=TrialState.FAIL, user_attrs={"status": "interrupted"}), 21, 25, 4),
        _ran(_trained(TrialState.COMPLETE, 5.0, 10), 85, 95, 5),
        _ran(_trained(TrialState.COMPLETE, 1.02, 10), 95, 105, 6),
        _ran(_trained(TrialState.COMPLETE, 1.0, 10), 105, 115, 7),
    ]
    text = "\n".join(milestones(trials, best=trials[7], max_epochs=10))

    assert "epochs trained: 51 of 60 (6 trained trials x 10; 15% saved by early stopping)" in text
    assert re.search(r"better than every hand design\s+#5\s+35.0 min", text)
    assert re.search(r"within 5% of the best\s+#6\s+45.0 min", text)
    assert re.search(r"the best\s+#7\s+55.0 min", text)


def test_a_new_best_s_second_seed_counts_as_epochs_trained():
    trials = [
        _ran(_trained(TrialState.COMPLETE, 2.0, 10, val_mean_px_by_seed=[1.9, 2.1]), 0, 10, 0),
        _ran(_trained(TrialState.PRUNED, 30.0, 1, status="stopped"), 10, 11, 1),
        _ran(_trained(TrialState.COMPLETE, 2.5, 10), 11, 20, 2),
    ]
    text = "\n".join(milestones(trials, best=trials[0], max_epochs=10))
    assert ("epochs trained: 31 of 40 (3 trained trials + 1 new bests trained again with a second seed x 10; "
            "22% saved by early stopping)") in text


def test_search_time_counts_parallel_trials_once():
    trials = [_ran(create_trial(value=1.0), a, b, i) for i, (a, b) in enumerate([(0, 10), (5, 12), (20, 25)])]
    end = trials[-1].datetime_complete
    assert search_minutes(trials, end) == 17.0
    assert search_minutes(trials, trials[0].datetime_complete) == 10.0  # only what ran before then


def test_the_reference_bar_stops_a_trial_far_behind_another_at_the_same_epoch():
    from search_engine.trial import HOPELESS_FACTOR, SETTLE_EPOCHS, reference_bar

    good = optuna.trial.create_trial(value=2.0, user_attrs={"history": [6.0, 4.0, 2.0]})
    good.number = 0
    assert reference_bar(3.1 * 4.0, 2, 1, [good]).startswith("reference bar: 12.40 px after epoch 2, more than 3x")
    assert reference_bar(2.9 * 4.0, 2, 1, [good]) is None  # behind, but not hopeless
    assert reference_bar(100.0, SETTLE_EPOCHS - 1, 1, [good]) is None  # too early to judge
    assert reference_bar(100.0, 4, 1, [good]) is None  # nobody reached epoch 4 yet
    assert reference_bar(100.0, 2, 0, [good]) is None  # a trial is not its own reference
    assert reference_bar(HOPELESS_FACTOR * 4.0 + 0.01, 2, 1, [good]) is not None


def test_without_early_stopping_the_reference_bar_stops_nothing():
    import dataclasses

    from objectives.metrics import Metrics
    from search_engine.trial import EpochReporter
    from search_engine.settings import TrialSettings

    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={"history": [2.0, 1.0, 1.0]}))
    for bar, stops in ((True, True), (False, False)):
        trial = study.ask()
        reporter = EpochReporter(trial, TrialSettings(max_bytes=81920, max_epochs=3, reference_bar=bar), kb=10.0)
        hopeless = dataclasses.replace(Metrics.failed(), mean_px=40.0)  # 40 px where the other trial had 1-2
        reporter(1, hopeless)
        assert reporter(2, hopeless) is stops
        study.tell(trial, 40.0)


def test_a_fair_trial_trains_to_the_end_past_the_reference_bar_and_the_rungs():
    import dataclasses

    from studies.attrs import CHOSEN_BY, FAIR
    from objectives.metrics import Metrics
    from search_engine.study import make_pruner
    from search_engine.trial import EpochReporter
    from search_engine.settings import TrialSettings

    settings = TrialSettings(max_bytes=81920, max_epochs=6)
    study = optuna.create_study(pruner=make_pruner(settings))
    study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={"history": [2.0, 1.0, 1.0, 1.0, 1.0, 1.0]}))
    hopeless = dataclasses.replace(Metrics.failed(), mean_px=40.0)
    for fair, stops_at in ((False, 1), (True, None)):  # a sampled trial stops at the first rung
        trial = study.ask()
        if fair:
            trial.set_user_attr(CHOSEN_BY, FAIR)  # a sigmoid head without batch norm, asked for by its question
        reporter = EpochReporter(trial, settings, kb=10.0)
        stopped = next((epoch for epoch in range(1, 7) if reporter(epoch, hopeless)), None)
        assert stopped == stops_at
        study.tell(trial, 40.0)


def _trial_line(cfg) -> str:
    study = optuna.create_study()
    study.add_trial(create_trial(value=1.5, user_attrs={"config": cfg.to_dict(), "weight_bytes": 4096, "epochs": 3,
                                                        "val_mean_px": 1.5}))
    return Progress(study, target=2, max_bytes=81_920).line(study.trials[-1])


def test_a_new_familys_knob_shows_in_the_trial_line_as_its_file_labels_it(monkeypatch):
    # docs/adding-a-family.md: the family file's register_family(...) says how its knobs print; progress.py names
    # no family.
    from search_space import registry
    from search_space.config import Config

    registry.families()  # every family file loaded, then a private copy of the registry for this test
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    registry.register_family("tapered", depths=(1, 3), knobs={"expand": (1, 4)}, labels={"expand": "taper {}"})(
        lambda cfg: None)
    registry.register_family("plainer", depths=(1, 3), knobs={"expand": (1, 4)})(lambda cfg: None)
    assert "tapered w5 d2 taper 3 no-bn linear" in _trial_line(Config(family="tapered", width=5, depth=2, expand=3))
    assert "plainer w5 d2 expand3 no-bn" in _trial_line(Config(family="plainer", width=5, depth=2, expand=3))
    assert "mobile w5 d2 x3 no-bn" in _trial_line(Config(family="mobile", width=5, depth=2, expand=3))
    assert "unet w5 d2 no-bn" in _trial_line(Config(family="unet", width=5, depth=2, expand=3))
