"""Running trials in process, what the search and the ablation share: stop at the target, `kill` (SIGTERM) stops
like Ctrl-C, and Optuna's warnings about a failure the command reports in one line are left out."""
from __future__ import annotations

import logging

import optuna

from search_engine.storage import storage_error
from search_engine.trial import TrialDiverged
from studies.reader import finished


class StopAtTarget:
    """Stop ``optimize`` once the study holds ``target`` finished trials (``studies.reader.finished``: a
    retried trial of a killed run does not count, a diverged one does, so ``n_trials`` alone cannot say)."""

    def __init__(self, target: int):
        self.target = target

    def __call__(self, study: optuna.Study, trial) -> None:
        if finished(study) >= self.target:
            study.stop()


def interrupt(signum, frame):
    """A SIGTERM handler: `kill` stops a run as Ctrl-C does."""
    raise KeyboardInterrupt


class QuietExpectedFailures(logging.Filter):
    """Leave out Optuna's warnings, traceback included, about a trial that failed in a way the runner already
    reports in one line: it diverged (its progress line gives the reason), Ctrl-C or SIGTERM cut it off (the
    "interrupted" message), or the storage failed (``search_engine.storage.storage_faults``). Any other failure keeps
    Optuna's warning and traceback.

    No message text is read. Optuna's first warning about a failed trial carries the trial's exception
    (``exc_info``); when it is an expected one, Optuna's records are left out until the trial is recorded, which
    this object hears as an ``optimize`` callback (put it first). Installed on Optuna's handlers by ``with``::

        with QuietExpectedFailures() as quiet:
            study.optimize(objective, catch=(TrialDiverged,), callbacks=[quiet, ...])
    """

    EXPECTED = (KeyboardInterrupt, TrialDiverged)

    def __init__(self):
        super().__init__()
        self.muted = False  # from an expected failure's warning to the end of its trial
        self.handlers: list[logging.Handler] = []

    def filter(self, record: logging.LogRecord) -> bool:
        # A storage error is reported by the command in one line (search_engine.storage.storage_faults).
        if record.exc_info and (isinstance(record.exc_info[1], self.EXPECTED) or storage_error(record.exc_info[1])):
            self.muted = True
        return not self.muted

    def __call__(self, study: optuna.Study, trial) -> None:
        self.muted = False  # the trial is recorded: what follows is about the next one

    def __enter__(self) -> "QuietExpectedFailures":
        self.handlers = list(logging.getLogger("optuna").handlers)
        for handler in self.handlers:
            handler.addFilter(self)
        return self

    def __exit__(self, *exc_info) -> None:
        for handler in self.handlers:
            handler.removeFilter(self)
        self.muted = False
