"""The trial queues: what the three (the hand designs beside the search, ``search_engine.reference``; the starting
points, ``StartingPoint``; fair exploration, ``search_engine.fair_share``) share: each is called before a trial is
asked for, or as an Optuna callback after one, and queues nothing once the study holds ``target`` finished trials,
so no queued trial is left waiting when the search ends."""
from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from search_space.space import SearchSpace, trial_params
from search_space.start import starting_points
from studies.attrs import BASELINE_ATTR, CHOSEN_BY, STARTING
from studies.reader import finished


class TrialQueue:
    target: int | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial | None = None) -> None:
        if self.target is None or finished(study) < self.target:
            self.maybe_enqueue(study)

    def maybe_enqueue(self, study: optuna.Study):
        """Queue the next trial if it is this queue's turn; return what was queued (falsy: nothing)."""
        raise NotImplementedError


class StartingPoint(TrialQueue):
    """A fresh study's first sampled trials are ``search_space.start.starting_points``, one at a time: call before
    each trial is asked for, after ``ReferenceQueue`` (so with two workers one trains a hand design, the other the
    starting points). It waits while a trial is queued (the hand designs run first with ``--reference-first``).
    Nothing is queued once the study holds a trial the sampler chose (a continued study has its own start), nor
    where a starting point is not in the study's space."""

    def __init__(self, space: SearchSpace, target: int | None = None):
        self.cfgs, self.target = starting_points(space), target

    def maybe_enqueue(self, study: optuna.Study) -> bool:
        trials = study.get_trials(deepcopy=False)
        started = sum(t.user_attrs.get(CHOSEN_BY) == STARTING for t in trials)
        if (started >= len(self.cfgs) or any(t.state == TrialState.WAITING for t in trials)
                or any(BASELINE_ATTR not in t.user_attrs and t.user_attrs.get(CHOSEN_BY) != STARTING for t in trials)):
            return False
        study.enqueue_trial(trial_params(self.cfgs[started]), user_attrs={CHOSEN_BY: STARTING})
        return True
