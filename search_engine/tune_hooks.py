"""What Ray Tune calls during a search on Ray (``search_engine.ray_driver``): the trainable that runs in a worker,
and the searcher, stopper and callback that pass Tune's events to the driver (``StudyDriver``), the study's only
writer. Importing it imports Ray: ``run_on_ray`` does, after ``ray_environment``. It never imports the driver's
module (the driver is handed in), so the two import one way: the driver imports this.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from ray import tune
from ray.tune import Callback
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from cones.types import ConeSet
from objectives.metrics import Metrics
from search_engine.confirm import confirms
from search_engine.settings import TrialSettings
from search_engine.trial import int8_metrics, train_second_seed, train_trial
from search_space.config import Config

if TYPE_CHECKING:  # only for the annotations: the driver's module imports this one, not the other way
    from search_engine.ray_driver import StudyDriver


def run_trial(config: dict, train_set: ConeSet, val_set: ConeSet, settings: TrialSettings) -> None:
    """The Tune trainable (runs in a Ray worker): train one config, report every epoch, then the outcome.

    It never decides to stop: the driver does, on the reported epoch, and Tune stops the worker there.
    """
    cfg = Config.from_dict(config["config"])
    started = time.perf_counter()

    def on_epoch(epoch: int, metrics: Metrics) -> bool:
        tune.report({"epoch": epoch, "train_seconds": time.perf_counter() - started, **metrics.to_dict()})
        return False

    result = train_trial(cfg, train_set, val_set, settings, on_epoch=on_epoch)
    outcome = {"outcome": result.status, "reason": result.reason, "epochs": result.epochs,
               "train_seconds": result.train_seconds}
    if settings.weights == "int8" and result.status == "ok":  # the int8 study's score, as in process
        outcome["int8"] = int8_metrics(result, cfg, settings, train_set, val_set).to_dict()
    if confirms(result, config.get("confirm_below")):  # a new best: trained again with the next seed, as in process
        second = train_second_seed(cfg, train_set, val_set, settings)
        outcome["confirm"] = {"status": second.status, "reason": second.reason, "epochs": second.epochs,
                              "train_seconds": second.train_seconds, "metrics": second.metrics.to_dict()}
    tune.report(outcome)


class Search(Searcher):
    """Tune asks the driver for the next trial's config."""

    def __init__(self, driver: StudyDriver):
        super().__init__()
        self.driver = driver

    def suggest(self, trial_id: str):
        config = self.driver.suggest(trial_id)
        return Searcher.FINISHED if config == self.driver.FINISHED else config

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        pass  # recorded by Record, which also sees the error

    def save(self, checkpoint_path: str) -> None:
        pass  # the study is the searcher's state

    def restore(self, checkpoint_path: str) -> None:
        pass


class Stop(Stopper):
    """Tune asks the driver, on each reported epoch, whether to stop the trial (or every trial)."""

    def __init__(self, driver: StudyDriver):
        self.driver = driver

    def __call__(self, trial_id: str, result: dict) -> bool:
        return self.driver.on_result(trial_id, result)

    def stop_all(self) -> bool:
        return self.driver.interrupted or bool(self.driver.broken)


class Record(Callback):
    """Tune tells the driver when a trial ends or fails, and lets it beat the heartbeats."""

    def __init__(self, driver: StudyDriver):
        self.driver = driver

    def on_step_begin(self, iteration, trials, **info) -> None:
        self.driver.beat()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.driver.on_complete(trial.trial_id)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.driver.on_error(trial.trial_id, _error_text(trial))


def _error_text(trial) -> str:
    """One line for the ``reason`` attribute from Tune's record of a failed trial."""
    # Tune appends "Failure # n (occurred at ...)" and the error to a local file before the callbacks run
    # (trial.get_error() reads the synced copy, which may not exist yet).
    path = trial.error_file
    text = Path(path).read_text() if path and Path(path).is_file() else ""
    text = text.rsplit("Failure # ", 1)[-1].partition("\n")[2].strip()
    if not text:
        return "the trial's worker failed (no error recorded)"
    # A dead worker's RayActorError is long; its useful part says why the process died.
    flat = " ".join(text.split())
    for marker in ("The actor is dead because", "Worker exit detail:"):
        if marker in flat:
            return flat[flat.index(marker):]
    # An exception raised in the trainable arrives as a traceback: its last line names it.
    return text.splitlines()[-1].strip() if "Traceback" in text else flat
