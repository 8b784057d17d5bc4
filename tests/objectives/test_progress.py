import optuna
import tqdm.std
from optuna.trial import create_trial

from objectives.progress import Progress


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
