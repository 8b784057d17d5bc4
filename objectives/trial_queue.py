"""What the three trial queues (the hand designs beside the search, the starting points, fair exploration) share:
each is called before a trial is asked for, or as an Optuna callback after one, and queues nothing once the study
holds ``target`` finished trials, so no queued trial is left waiting when the search ends."""
from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

from studies.reader import finished


class TrialQueue:
    target: int | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial | None = None) -> None:
        if self.target is None or finished(study) < self.target:
            self.maybe_enqueue(study)

    def maybe_enqueue(self, study: optuna.Study):
        """Queue the next trial if it is this queue's turn; return what was queued (falsy: nothing)."""
        raise NotImplementedError
