"""Read a search study into a tidy table: one ``TrialRow`` per trial, with the attributes the runner writes.

Only reads: opening a storage never creates a study (nor, for SQLite, a database file).

    from analysis.study_data import open_study, read_trials, study_info
    study = open_study("sqlite:///optuna.db", None)  # None: the storage's only study
    rows = read_trials(study)
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

BYTES_PER_KB = 1024
DEFAULT_MAX_BYTES = 80 * BYTES_PER_KB
METRICS = ("val_mean_px", "val_median_px", "val_pck1", "val_pck2", "val_pck3", "val_heatmap_mse")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class StudyNotFound(ValueError):
    """The storage holds no study, or not the one asked for, or more than one and none was named."""


@dataclass(frozen=True)
class StudyInfo:
    name: str
    storage: str
    directions: tuple[str, ...]  # ("minimize",) or ("minimize", "minimize")
    max_bytes: int
    max_epochs: int | None
    user_attrs: dict = field(default_factory=dict)

    @property
    def max_kb(self) -> float:
        return self.max_bytes / BYTES_PER_KB


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str  # optuna state name: "COMPLETE", "PRUNED", "FAIL", "RUNNING", ...
    # "ok", "stopped", "oversize", "diverged" (the runner's status), "failed" (FAIL without a status: the process
    # crashed or was killed) or "unfinished" (RUNNING, WAITING)
    outcome: str
    error: float | None  # validation mean pixel error; None when the trial never trained or it is not finite
    weight_bytes: int | None
    macs: int | None
    epochs: int | None
    family: str | None
    baseline: str | None  # name of the enqueued hand design, if this is one
    params: dict
    metrics: dict  # the val_* floats that are present
    history: tuple[float, ...]
    reason: str | None
    started: datetime | None
    completed: datetime | None

    @property
    def size_kb(self) -> float | None:
        return None if self.weight_bytes is None else self.weight_bytes / BYTES_PER_KB

    @property
    def completed_ok(self) -> bool:
        """Trained to the end (not stopped, not diverged) with a finite error."""
        return self.outcome == "ok" and self.error is not None

    def feasible(self, max_bytes: int) -> bool:
        return self.weight_bytes is not None and self.weight_bytes <= max_bytes

    def label(self) -> str:
        """Short architecture description for hover texts, e.g. ``resnet w8 d2 BN linear``."""
        p = self.params
        parts = [str(self.family or p.get("family", "?"))]
        if "width" in p:
            parts.append(f"w{p['width']}")
        if "depth" in p:
            parts.append(f"d{p['depth']}")
        if p.get("batch_norm"):
            parts.append("BN")
        if "head" in p:
            parts.append(str(p["head"]))
        return " ".join(parts)


def open_study(storage: str, name: str | None) -> optuna.Study:
    """Load study ``name`` from ``storage``; ``name=None`` picks the storage's only study."""
    if storage.startswith("sqlite:///"):
        path = storage[len("sqlite:///"):]
        # Optuna would create an empty database here; an analysis must not write, and a typo should say so.
        if path and path != ":memory:" and not os.path.exists(path):
            raise StudyNotFound(f"no study in {storage}: the file {path!r} does not exist")
    names = sorted(optuna.get_all_study_names(storage=storage))
    if not names:
        raise StudyNotFound(f"no study in {storage}; run a search first or pass the right --storage")
    if name is None:
        if len(names) > 1:
            raise StudyNotFound(f"{storage} holds {len(names)} studies, pick one with --study: {', '.join(names)}")
        name = names[0]
    elif name not in names:
        raise StudyNotFound(f"no study {name!r} in {storage}; studies there: {', '.join(names)}")
    return optuna.load_study(study_name=name, storage=storage)


def study_info(study: optuna.Study, storage: str) -> StudyInfo:
    attrs = dict(study.user_attrs)
    max_epochs = attrs.get("max_epochs")
    return StudyInfo(
        name=study.study_name,
        storage=storage,
        directions=tuple(d.name.lower() for d in study.directions),
        max_bytes=int(attrs.get("max_bytes", DEFAULT_MAX_BYTES)),
        max_epochs=None if max_epochs is None else int(max_epochs),
        user_attrs=attrs,
    )


def read_trials(study: optuna.Study) -> list[TrialRow]:
    return [trial_row(t) for t in study.get_trials(deepcopy=False)]


def trial_row(t: FrozenTrial) -> TrialRow:
    attrs = t.user_attrs
    return TrialRow(
        number=t.number,
        state=t.state.name,
        outcome=_outcome(t),
        error=_error(t),
        weight_bytes=_int_or_none(attrs.get("weight_bytes")),
        macs=_int_or_none(attrs.get("macs")),
        epochs=_int_or_none(attrs.get("epochs")),
        family=attrs.get("family", t.params.get("family")),
        baseline=attrs.get("baseline"),
        params=dict(t.params),
        metrics={k: float(attrs[k]) for k in METRICS if attrs.get(k) is not None},
        history=tuple(float(v) for v in attrs.get("history") or ()),
        reason=attrs.get("reason"),
        started=t.datetime_start,
        completed=t.datetime_complete,
    )


def full_budget(rows: list[TrialRow], max_epochs: int | None) -> list[TrialRow]:
    """Completed trials that ran every epoch (all completed trials when the study does not say how many)."""
    return [
        r for r in rows
        if r.completed_ok and (max_epochs is None or r.epochs is None or r.epochs >= max_epochs)
    ]


def best_feasible(rows: list[TrialRow], max_bytes: int) -> TrialRow | None:
    """The completed trial with the lowest error among those within the size cap."""
    candidates = [r for r in rows if r.state == "COMPLETE" and r.completed_ok and r.feasible(max_bytes)]
    return min(candidates, key=lambda r: (r.error, r.number), default=None)


def _outcome(t: FrozenTrial) -> str:
    status = t.user_attrs.get("status")
    if status in ("ok", "stopped", "oversize", "diverged"):
        return status
    # No status: the runner never got to write one (a killed process is marked FAIL by the heartbeat).
    return {TrialState.COMPLETE: "ok", TrialState.PRUNED: "stopped", TrialState.FAIL: "failed"}.get(
        t.state, "unfinished"
    )


def _error(t: FrozenTrial) -> float | None:
    value = t.user_attrs.get("val_mean_px")
    if value is None and t.state == TrialState.COMPLETE and t.values:
        value = t.values[0]
    if value is None or t.state == TrialState.FAIL or t.user_attrs.get("status") in ("oversize", "diverged"):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _int_or_none(value) -> int | None:
    return None if value is None else int(value)
