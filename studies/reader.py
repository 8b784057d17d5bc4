"""The rules for reading a search study, each written once: a trial's error and exact size, whether it is
usable and feasible, the best feasible trial, Pareto ranks, and opening a storage to read it.

The search's progress lines, the export (``shipping.export``) and the analysis all call these, so that they agree on
which trial is "the best within the cap". Importing this module never imports torch (the search's code
does; a report or an export of a finished study should not have to).

    from studies.reader import best_feasible, read_study, study_cap
    study = read_study("sqlite:///optuna.db", None)  # None: the storage's only study
    best = best_feasible(study.get_trials(deepcopy=False), study_cap(study))
"""
from __future__ import annotations

import math
import os
from typing import Callable, Iterable, Sequence, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from search_space.cap import within  # torch-free, unlike search_space.size
from search_space.config import BYTES_PER_KB, DEFAULT_MAX_KB
from studies.attrs import CONFIG, DIVERGED, MAX_BYTES, STATUS, UNUSABLE_STATUSES, VAL_MEAN_PX, WEIGHT_BYTES, WEIGHTS

T = TypeVar("T")
DEFAULT_MAX_BYTES = DEFAULT_MAX_KB * BYTES_PER_KB  # the search's default cap: search_space.size.max_bytes()


class StudyNotFound(ValueError):
    """The storage cannot be read, holds no study, not the one asked for, or several and none was named."""


def read_study(storage: str, name: str | None) -> optuna.Study:
    """Load study ``name`` from ``storage`` to read it; ``name=None`` picks the storage's only study.

    Never creates anything: a missing SQLite file is an error, not a new empty database."""
    if storage.startswith("sqlite:///"):
        path = storage[len("sqlite:///"):]
        # Optuna would create an empty database here; a reader must not write, and a typo should say so.
        if path and path != ":memory:" and not os.path.exists(path):
            raise StudyNotFound(f"no study in {storage}: the file {path!r} does not exist")
    try:
        names = sorted(optuna.get_all_study_names(storage=storage))
    except Exception as error:  # sqlalchemy and Optuna raise many kinds; the user needs the URL and the cause
        raise StudyNotFound(f"cannot read storage {storage!r}: {str(error).splitlines()[0][:200]}") from None
    if not names:
        raise StudyNotFound(f"--storage {storage} holds no study; run runners/search.py first")
    if name is None:
        if len(names) > 1:
            raise StudyNotFound(f"--storage {storage} holds {len(names)} studies; pick one with --study: "
                                + ", ".join(names))
        name = names[0]
    elif name not in names:
        raise StudyNotFound(f"--study {name!r} is not in {storage}; its studies: {', '.join(names)}")
    return optuna.load_study(study_name=name, storage=storage)


def study_cap(study: optuna.Study) -> int:
    """The study's size cap in bytes of weights (the search records it; older studies used the default)."""
    return int(study.user_attrs.get(MAX_BYTES, DEFAULT_MAX_BYTES))


def study_weights(study: optuna.Study) -> str:
    """How the study's cap counts weights, "float32" or "int8" (the search records it; older studies: float32)."""
    return str(study.user_attrs.get(WEIGHTS, "float32"))


def trial_error(trial: FrozenTrial) -> float:
    """Validation mean pixel error: the first objective (in both kinds of study), else the ``val_mean_px``
    attribute (a trial stopped early has no objective value), else inf."""
    value = trial.values[0] if trial.values else trial.user_attrs.get(VAL_MEAN_PX)
    return float(value) if value is not None else math.inf


def trial_weight_bytes(trial: FrozenTrial) -> int | None:
    """Exact bytes of the deployed weights; None when the trial records neither its size nor its config."""
    size = trial.user_attrs.get(WEIGHT_BYTES)
    if size is None and CONFIG in trial.user_attrs:
        # Only for trials that predate the attribute: measuring builds the model, so torch loads here, lazily.
        from search_space.config import Config
        from search_space.size import measure

        size = measure(Config.from_dict(trial.user_attrs[CONFIG])).weight_bytes
    return None if size is None else int(size)


def is_usable(trial: FrozenTrial) -> bool:
    """Trained to the end with a result: COMPLETE, neither diverged nor oversize, and a finite error."""
    return (trial.state == TrialState.COMPLETE and trial.user_attrs.get(STATUS) not in UNUSABLE_STATUSES
            and math.isfinite(trial_error(trial)))


def within_cap(trial: FrozenTrial, max_bytes: int) -> bool:
    """The cap rule (``search_space.cap.within``) on the trial's recorded size."""
    return within(trial_weight_bytes(trial), max_bytes)


def is_feasible(trial: FrozenTrial, max_bytes: int) -> bool:
    """Usable and within ``max_bytes``: a trial that can ship."""
    return is_usable(trial) and within_cap(trial, max_bytes)


def best_feasible(items: Iterable[T], max_bytes: int, trial_of: Callable[[T], FrozenTrial] = lambda t: t) -> T | None:
    """The feasible trial with the lowest error; ties go to the smaller one, then to the earlier one. ``items`` may
    be trials or rows that hold one (``trial_of`` finds it: the analysis passes its ``TrialRow``s)."""
    return min((item for item in items if is_feasible(trial_of(item), max_bytes)),
               key=lambda item: (trial_error(trial_of(item)), trial_weight_bytes(trial_of(item)),
                                 trial_of(item).number),
               default=None)


def pareto_ranks(points: Sequence[Sequence[float]]) -> list[int]:
    """Non-dominated sorting (every coordinate minimised): 0 for the Pareto front, 1 for the front behind it, ...

    ``a`` dominates ``b`` when it is no worse in every coordinate and strictly better in one, so identical
    points share a rank. Each point is compared with every other once (Deb et al.'s fast non-dominated sort),
    then the fronts are peeled off.
    """
    points = [tuple(p) for p in points]
    beaten_by = [0] * len(points)  # how many points dominate point i
    beats: list[list[int]] = [[] for _ in points]  # the points point i dominates
    for i, a in enumerate(points):
        for j in range(i + 1, len(points)):
            b = points[j]
            if _dominates(a, b):
                beats[i].append(j)
                beaten_by[j] += 1
            elif _dominates(b, a):
                beats[j].append(i)
                beaten_by[i] += 1
    ranks = [-1] * len(points)
    front, rank = [i for i, n in enumerate(beaten_by) if n == 0], 0
    while front:
        behind = []
        for i in front:
            ranks[i] = rank
            for j in beats[i]:
                beaten_by[j] -= 1
                if beaten_by[j] == 0:
                    behind.append(j)
        front, rank = behind, rank + 1
    return ranks


def _dominates(a: tuple, b: tuple) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def finished(study: optuna.Study) -> int:
    """Trials that count toward ``--trials``: complete, pruned, or failed by their own doing (diverged).

    A trial that failed because its process died (stale heartbeat) is retried as a new trial, so it does
    not count.
    """
    return sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and t.user_attrs.get(STATUS) == DIVERGED)
        for t in study.get_trials(deepcopy=False)
    )
