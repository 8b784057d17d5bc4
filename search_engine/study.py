"""Open (or continue) a study: storage with heartbeats, sampler, pruner, the note.

Shared by the in-process runner and the Ray driver so both write the same study. What queues trials into it:
``search_engine.reference`` (the hand designs), ``search_engine.queues`` (the starting points) and
``search_engine.fair_share``.
"""
from __future__ import annotations

import os
import sys
import time
import warnings

import optuna
import sqlalchemy.exc
from optuna.storages import RetryHeartbeatStaleTrialCallback

from search_engine.rungs import RungPruner
from search_engine.settings import TrialSettings, directions, metric_names
from search_engine.storage import SearchStorage, safe_url, storage_error
from search_space.config import BYTES_PER_KB
from studies.reader import study_weights


SAMPLERS = ("tpe", "random", "nsga2")


def open_storage(url: str, heartbeat_interval: int = 30) -> SearchStorage:
    """An RDB storage whose trials beat a heartbeat: a trial whose process was killed is marked FAIL when a
    search next starts (after ``2 x heartbeat_interval`` without a beat) and retried as a new trial. A lost
    server connection is retried (``search_engine.storage``)."""
    if url.startswith("sqlite"):
        # Several processes may write one SQLite file (dashboard, a second runner): wait for the lock
        # rather than failing at once.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:  # a pooled connection may have died with a restarted server: test it before use
        engine_kwargs = {"pool_pre_ping": True}
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return SearchStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=2 * heartbeat_interval,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
                )
        except Exception as error:  # sqlalchemy raises many kinds; the user needs the URL and the cause
            if _lost_schema_race(error) and attempt < 2:
                # Two searches started at once on a new database both create its tables; the second to
                # create a table or write the schema's version row loses, and finds the schema made when it
                # tries again.
                time.sleep(0.5)
                continue
            if storage_error(error) is not None:
                raise  # the command's storage_faults says it in one line
            raise SystemExit(f"cannot open storage {safe_url(url)!r}: {str(error).splitlines()[0]}") from None


def _lost_schema_race(error: BaseException) -> bool:
    """Another process created the storage's schema while this one did: a duplicate version row
    (IntegrityError) or a table made between SQLAlchemy's check and its CREATE ("already exists")."""
    found = storage_error(error)
    if isinstance(found, sqlalchemy.exc.IntegrityError):
        return True
    return isinstance(found, sqlalchemy.exc.OperationalError) and "already exists" in str(found.orig)


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler ``name``, its random numbers drawn per trial from ``seed`` and the trial's number
    (``PerTrialSeed``)."""
    if name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # multivariate + group model the conditional parameters (loss, expand, momentum) jointly with
            # the ones they depend on; constant_liar keeps parallel workers from sampling the same point.
            # 20 startup trials, the 8 hand designs among them (why 20: docs/decisions.md, "The search's rules").
            return SeededTPESampler(seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=20)
    if name == "random":
        return SeededRandomSampler(seed=seed)
    if name == "nsga2":
        return SeededNSGAIISampler(seed=seed)
    raise ValueError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")


class PerTrialSeed:
    """A sampler (mixed in before Optuna's) whose random state is seeded again before each trial from (seed,
    trial number).

    A trial's number is unique in its study (the storage hands it out), so two searches started together on a
    new study, or a continued run beside another, never draw the same random numbers; one search alone draws
    the same ones for the same study, so a fresh search with the same ``--seed`` samples the same sequence, and a
    continued one never replays the draws of the trials before it. A process-wide seed could not do all three:
    the same seed repeats the other process's draws, a seed mixed with the process id is not reproducible. The
    random states are Optuna's (``_rng``, and that of the ``_random_sampler`` TPE and NSGA-II draw their first
    trials with)."""

    def __init__(self, *, seed: int, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self._study_seed = seed

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        for stream, sampler in enumerate((self, getattr(self, "_random_sampler", None))):
            if sampler is not None:
                sampler._rng.rng.seed([self._study_seed, trial.number, stream])
        super().before_trial(study, trial)


class SeededTPESampler(PerTrialSeed, optuna.samplers.TPESampler):
    pass


class SeededRandomSampler(PerTrialSeed, optuna.samplers.RandomSampler):
    pass


class SeededNSGAIISampler(PerTrialSeed, optuna.samplers.NSGAIISampler):
    pass


def make_pruner(settings: TrialSettings, early_stopping: bool = True) -> optuna.pruners.BasePruner:
    if not early_stopping or settings.multi_objective:
        # Multi-objective studies stop trials with search_engine.trial.pareto_rung_stop instead.
        return optuna.pruners.NopPruner()
    # Successive halving (asynchronous, one bracket): at each rung a trial goes on only if it is in the best
    # third of the trials that reached it. Why this rule and not Hyperband or a stricter factor:
    # docs/decisions.md, "The search's rules"; why the first trials are judged against the hand designs, and why
    # the rungs stay in epochs: "The first hour".
    if settings.rungs == "optuna":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=settings.reduction_factor)
    return RungPruner(settings.max_epochs, settings.reduction_factor, unit=settings.rungs)


def open_study(storage: SearchStorage, name: str, settings: TrialSettings, sampler: str = "tpe",
               early_stopping: bool = True) -> optuna.Study:
    wanted = directions(settings.objectives)
    try:
        existing = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None:
        have = [d.name.lower() for d in existing.directions]
        if have != wanted:
            raise SystemExit(
                f"study {name!r} has {len(have)} objective(s) and --objectives asks for {len(wanted)}; "
                f"use --study-name to start a new study or drop --objectives to continue it"
            )
    study = optuna.create_study(
        study_name=name, storage=storage, directions=wanted, load_if_exists=True,
        sampler=make_sampler(sampler, settings.seed),
        pruner=make_pruner(settings, early_stopping),
    )
    if existing is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metric_names(settings.objectives))
    return study


def describe(study: optuna.Study, settings: TrialSettings, data: str, split: str, val_teams, val_fraction: float,
             train_size: int, val_size: int) -> None:
    """Study user attributes (read by analysis and export) and a note that optuna-dashboard shows."""
    command = " ".join([os.path.basename(sys.executable)] + sys.argv)
    attrs = {
        "data": data, "split": split, "val_teams": list(val_teams) if val_teams else None,
        "val_fraction": val_fraction, "seed": settings.seed, "max_bytes": settings.max_bytes, "weights": settings.weights,
        "max_epochs": settings.max_epochs, "objectives": list(settings.objectives), "command": command,
        "train_size": train_size, "val_size": val_size,
    }
    earlier = study.user_attrs
    # One cap per study: its space, its pruned candidates and its "best within the cap" all depend on it.
    if "max_bytes" in earlier and earlier["max_bytes"] != settings.max_bytes:
        raise SystemExit(
            f"study {study.study_name!r} was searched under a cap of {earlier['max_bytes']} bytes "
            f"({earlier['max_bytes'] / BYTES_PER_KB:g} KB), this run asks for {settings.max_bytes} bytes; continue it with "
            f"--max-kb {earlier['max_bytes'] / BYTES_PER_KB:g}, or search the new cap in a new --study-name "
            "(export.py --max-kb picks smaller trials of a finished study)"
        )
    # One weight format per study: the cap counts its bytes and every trial's score is measured in it.
    if "max_bytes" in earlier and study_weights(study) != settings.weights:
        raise SystemExit(
            f"study {study.study_name!r} was searched with {study_weights(study)} weights, this run asks for "
            f"{settings.weights}; continue it with --weights {study_weights(study)}, or search {settings.weights} in a "
            "new --study-name"
        )
    for key in ("data", "split"):
        # Trials validated on another split are not comparable: refuse to mix them in one study.
        if key in earlier and earlier[key] != attrs[key]:
            raise SystemExit(
                f"study {study.study_name!r} was run with {key} {earlier[key]!r}, this run has {attrs[key]!r}; "
                f"use the same --data/--val-teams/--val-fraction/--seed, or a new --study-name"
            )
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    note = "\n".join([
        f"# {study.study_name}",
        f"- **data**: `{data}` ({train_size} train / {val_size} validation crops)",
        f"- **split**: {split}",
        f"- **size cap**: {settings.max_bytes:,} bytes of {settings.weights} weights (batch norm folded)",
        f"- **epochs per trial**: at most {settings.max_epochs}; objectives: {', '.join(settings.objectives)}",
        f"- **seed**: {settings.seed}",
        f"- **command**: `{command}`",
        "",
        "Trials with user attribute `baseline` are the original study's hand designs (the reference).",
    ])
    try:
        from optuna_dashboard import save_note

        save_note(study, note)
    except ImportError:  # the dashboard is optional at run time; the attributes carry the same facts
        pass
