"""Run the search's trials on Ray Tune, several at once (``runners/search.py`` calls ``run_on_ray``).

    python runners/search.py --trials 200 --workers 2                        # a local Ray, 2 trials at once
    python runners/search.py --trials 200 --ray-address auto \\
        --storage postgresql+psycopg://nas:SECRET@db-host/nas                # a Ray cluster (README, "Scaling out")

The driver (this process) is the only one that touches the Optuna study; Ray workers only train. What Tune
calls (the trainable, the searcher, the stopper, the callback) is ``search_engine/tune_hooks.py``; Ray is imported only
in ``run_on_ray``, once ``ray_environment`` has set Ray's options, so importing this module changes nothing.

- ``StudyDriver.suggest`` asks the study for a trial (queued hand designs come first), samples its config
  and measures its size. An oversize candidate is told PRUNED right there: it never reaches Ray.
- A worker runs ``objectives.train.train`` with ``settings.threads`` torch threads on as many Ray CPUs,
  on the data set put once into Ray's object store (``tune.with_parameters``), and ``tune.report``s the
  validation metrics after each epoch. ``tune.report`` blocks until the driver has read the result, so a
  trial the driver stops trains no further epoch.
- The driver writes each epoch's value (``trial.report`` and the ``history`` attribute) and decides
  whether to stop the trial with the study's pruner or ``pareto_rung_stop`` (``EpochReporter``, as in
  process); a Tune ``Stopper`` carries the decision to Ray. When a trial ends the driver tells the study
  COMPLETE, PRUNED (stopped early, with its intermediate values) or FAIL (diverged; ``crashed`` when its
  worker process died; ``interrupted`` by Ctrl-C), with the user attributes ``record_result`` writes.

Why one writer, not Ray's ``OptunaSearch``: with ASHA, ``OptunaSearch`` tells a stopped trial COMPLETE
with its last partial value, which misleads the sampler and the analysis; it also cannot write the
size check, the history or the baselines' exemption. And since only the driver writes, a SQLite file
never sees two writers from this runner (``open_storage`` still waits 60 s for a lock held by the
dashboard or another runner); PostgreSQL is for several drivers on one study.

The driver beats every running trial's heartbeat from Tune's event loop, so a killed driver's trials
are failed and retried by the next search (``RetryHeartbeatStaleTrialCallback``), as in process.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import optuna
from optuna.trial import TrialState

from cones.types import ConeSet
from objectives.metrics import Metrics
from objectives.train import TrainResult
from search_engine.confirm import confirm_below, confirmed
from search_engine.settings import TrialSettings
from search_engine.trial import EpochReporter, TrialDiverged, int8_scored, record_result, record_size
from search_space.space import SearchSpace, sample_config
from studies.attrs import CRASHED, INTERRUPTED, RAY_TRIAL, STATUS, REASON, WORKER
from studies.reader import finished

# Ray's defaults that a search does not want: a `uv run` runtime environment, usage statistics sent
# over the network, Tune's boxed console output, and Tune's own Ctrl-C handler (which tells the user to
# `Tuner.restore`; here rerunning the search command resumes).
RAY_ENV = {
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
}
REASON_CHARS = 600  # a user attribute the dashboard shows in a table cell


def ray_environment() -> None:
    """Set ``RAY_ENV`` where the user has not set it: before ``import ray``, which reads
    ``RAY_ENABLE_UV_RUN_RUNTIME_ENV`` once (``ray._private.ray_constants``); the others before ``ray.init`` and
    ``Tuner.fit``. So this module imports Ray only in ``run_on_ray``, after calling this."""
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)


def run_on_ray(study: optuna.Study, storage, settings: TrialSettings, space: SearchSpace, train_set: ConeSet,
               val_set: ConeSet, progress, queues: tuple = (), *, target: int, workers: int,
               timeout: float | None = None, address: str | None = None) -> None:
    """Run trials ``workers`` at a time until the study holds ``target`` finished trials (no new trial starts
    after ``timeout`` seconds).

    Joins the Ray cluster at ``address`` ('auto' or HOST:PORT) if given, else starts a local Ray (or uses the one
    already initialised in this process) and shuts down what it started. Raises KeyboardInterrupt after Ctrl-C,
    once the running trials are stopped and recorded. ``queues``: objects whose ``maybe_enqueue(study)`` is called,
    in order, before each trial is asked for (``ReferenceQueue``, ``FairShare``).
    """
    ray_environment()
    import ray
    from ray import tune

    from search_engine.tune_hooks import Record, Search, Stop, run_trial

    threads = settings.threads or 1
    started_ray = not ray.is_initialized()
    if started_ray:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            # "local": a private Ray for this search, even when `ray start` runs on this machine.
            ray.init(address="local", num_cpus=max(os.cpu_count() or 1, workers * threads),
                     include_dashboard=False, logging_level=logging.WARNING)
    driver = StudyDriver(study, storage, settings, space, target=target, timeout=timeout,
                         progress=progress, workers=workers, queues=queues)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, train_set=train_set, val_set=val_set, settings=settings),
        {"cpu": threads},
    )
    try:
        with tempfile.TemporaryDirectory(prefix="keypoint-nas-tune-") as scratch, _ctrl_c_stops(driver):
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=Search(driver), num_samples=-1, max_concurrent_trials=workers,
                    # A worker process trains one trial after another: no process start per trial.
                    reuse_actors=True,
                    trial_dirname_creator=lambda t: f"trial_{t.config['trial']}",
                ),
                # Tune's own records go to a scratch folder: the study is the record, and resuming is
                # rerunning the search command, not Tuner.restore.
                run_config=tune.RunConfig(
                    name="search", storage_path=scratch, stop=Stop(driver), callbacks=[Record(driver)],
                    failure_config=tune.FailureConfig(max_failures=0), verbose=0,
                ),
            )
            tuner.fit()
    finally:
        driver.fail_unfinished()
        if started_ray:
            ray.shutdown()
    if driver.interrupted:
        raise KeyboardInterrupt
    if driver.broken:
        raise SystemExit(driver.broken)


@dataclass
class _Running:
    trial: optuna.Trial
    kb: float
    reporter: EpochReporter
    last: dict | None = None  # the last epoch's report
    outcome: dict | None = None  # the worker's closing report
    stopped: bool = False  # the driver stopped it early


@dataclass
class StudyDriver:
    """The driver's side of the search: the study's only writer (see the module docstring)."""

    FINISHED: ClassVar[str] = "finished"  # suggest: no trial will follow (Tune's Searcher.FINISHED)

    study: optuna.Study
    storage: object
    settings: TrialSettings
    space: SearchSpace
    target: int
    timeout: float | None
    progress: object
    workers: int = 1
    queues: tuple = ()  # the hand designs' and fair exploration's turns, taken before each ask
    running: dict[str, _Running] = field(default_factory=dict)  # Tune trial id -> trial
    interrupted: bool = False
    broken: str = ""  # why the search gave up (every worker crashing)
    crashes_in_a_row: int = 0

    def __reduce__(self):
        # Tune saves its experiment state, which holds the stopper and the callbacks and so this driver,
        # with cloudpickle; the study is the record, so nothing of the driver is saved.
        return (_not_saved, ())

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.done = finished(self.study)
        interval = getattr(self.storage, "get_heartbeat_interval", lambda: None)()
        self.heartbeat = interval
        self.last_beat = 0.0

    # --- Tune's side: what to run next, a result, the end of a trial ---

    def suggest(self, tune_id: str) -> dict | str | None:
        """The next trial's config, None (not now: running trials may still fail) or ``StudyDriver.FINISHED``."""
        while True:
            if self.interrupted or self.broken:
                return self.FINISHED
            if self.timeout is not None and time.monotonic() - self.started > self.timeout:
                return self.FINISHED
            if self.done >= self.target:
                return self.FINISHED
            if self.done + len(self.running) >= self.target:
                return None
            trial = self._ask()
            cfg = sample_config(trial, self.space)
            try:
                size = record_size(trial, cfg, self.settings.max_bytes, self.settings.weights)
            except optuna.TrialPruned:  # oversize: recorded, never scheduled
                self._tell(trial, TrialState.PRUNED)
                continue
            trial.set_user_attr(RAY_TRIAL, tune_id)
            self.running[tune_id] = _Running(trial, size.kb, EpochReporter(trial, self.settings, size.kb))
            return {"trial": trial.number, "config": cfg.to_dict(),
                    "confirm_below": confirm_below(trial, self.settings)}

    def on_result(self, tune_id: str, result: dict) -> bool:
        """Record one reported epoch; True stops the trial (Optuna's pruner or the Pareto rung rule)."""
        run = self.running.get(tune_id)
        if run is None:
            return False
        if "outcome" in result:
            run.outcome = result
            return False
        epoch = result.get("epoch")
        if epoch is None or epoch <= len(run.reporter.history):  # Tune repeats the last result at the end
            return False
        if run.last is None:
            run.trial.set_user_attr(WORKER, f"{result.get('hostname', '?')}:{result.get('pid', '?')}")
        run.last = result
        run.stopped = bool(run.reporter(epoch, _metrics(result), result.get("train_seconds")))
        return run.stopped

    def on_complete(self, tune_id: str) -> None:
        """The trial's process ended it (trained out, diverged) or the driver stopped it."""
        run = self.running.pop(tune_id, None)
        if run is None:
            return
        if run.stopped:
            status, epochs = "stopped", run.last["epoch"]
            seconds, reason = run.last["train_seconds"], ""
        elif run.outcome is not None:
            status, epochs = run.outcome["outcome"], run.outcome["epochs"]
            seconds, reason = run.outcome["train_seconds"], run.outcome["reason"]
        else:
            self._fail(run, CRASHED, "the worker ended without reporting a result")
            return
        self.crashes_in_a_row = 0
        metrics = _metrics(run.last) if run.last is not None and status != "diverged" else Metrics.failed()
        result = TrainResult(status, metrics, epochs, seconds, list(run.reporter.history), reason)
        if run.outcome is not None and "int8" in run.outcome and not run.stopped:
            result = int8_scored(run.trial, result, _metrics(run.outcome["int8"]))
        if run.outcome is not None and "confirm" in run.outcome and not run.stopped:
            second = run.outcome["confirm"]  # a diverged run's metrics are already Metrics.failed()'s
            result = confirmed(run.trial, result, TrainResult(second["status"], _metrics(second["metrics"]),
                                                              second["epochs"], second["train_seconds"], [],
                                                              second["reason"]), self.settings.seed)
        try:
            value = record_result(run.trial, result, self.settings, run.kb)
        except optuna.TrialPruned:
            self._tell(run.trial, TrialState.PRUNED)
        except TrialDiverged:
            self._tell(run.trial, TrialState.FAIL)
        else:
            self._tell(run.trial, TrialState.COMPLETE, value)

    def on_error(self, tune_id: str, error: str) -> None:
        """The trial's worker raised or died (killed, out of memory, a lost node)."""
        run = self.running.pop(tune_id, None)
        if run is None:
            return
        if self.interrupted:  # Ctrl-C in a terminal reaches the workers too
            self._fail(run, INTERRUPTED, "the search was interrupted (Ctrl-C)")
            return
        self._fail(run, CRASHED, error)
        self.crashes_in_a_row += 1
        if self.crashes_in_a_row >= max(3, self.workers + 1):
            self.broken = (f"{self.crashes_in_a_row} trials in a row lost their worker, the last one with: "
                           f"{error}\nthe workers are failing, not the trials: check the Ray logs "
                           f"(/tmp/ray/session_latest/logs)")

    def beat(self) -> None:
        """Heartbeats of the running trials, every heartbeat interval (called from Tune's loop)."""
        if not self.heartbeat or time.monotonic() - self.last_beat < self.heartbeat:
            return
        self.last_beat = time.monotonic()
        for run in self.running.values():
            self.storage.record_heartbeat(run.trial._trial_id)

    def fail_unfinished(self) -> None:
        """After Tune returns: trials it stopped without an end (Ctrl-C, an error in the driver)."""
        for run in list(self.running.values()):
            self._fail(run, INTERRUPTED, "the search was interrupted (Ctrl-C)" if self.interrupted
                       else "the search stopped before the trial ended")
        self.running.clear()

    # --- the study ---

    def _ask(self) -> optuna.Trial:
        with warnings.catch_warnings():
            # fail_stale_trials is experimental; ask() warns that heartbeats are meant for optimize(),
            # which beats them itself: here beat() does.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
            if self.heartbeat:
                # As study.optimize does before each trial: fail trials of a killed search (the retry
                # callback enqueues them again, and the ask below takes them first).
                optuna.storages.fail_stale_trials(self.study)
            for queue in self.queues:
                queue.maybe_enqueue(self.study)
            trial = self.study.ask()
        if self.heartbeat:
            self.storage.record_heartbeat(trial._trial_id)
        return trial

    def _fail(self, run: _Running, status: str, reason: str) -> None:
        run.trial.set_user_attr(STATUS, status)
        run.trial.set_user_attr(REASON, reason[:REASON_CHARS])
        self._tell(run.trial, TrialState.FAIL)

    def _tell(self, trial: optuna.Trial, state: TrialState, value=None) -> None:
        frozen = self.study.tell(trial, value, state=state)
        self.done = finished(self.study)
        self.progress(self.study, frozen)


def _not_saved() -> None:
    return None


def _metrics(result: dict) -> Metrics:
    return Metrics(result["mean_px"], result["median_px"], tuple(result["per_keypoint_px"]), result["pck1"],
                   result["pck2"], result["pck3"], result["heatmap_mse"])


@contextmanager
def _ctrl_c_stops(driver: StudyDriver):
    """Ctrl-C: stop every running trial, record them, then raise KeyboardInterrupt (a second one: at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if driver.interrupted:
            raise KeyboardInterrupt
        driver.interrupted = True
        print("\nstopping the running trials (Ctrl-C again to quit at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
