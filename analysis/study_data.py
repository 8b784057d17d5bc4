"""Read a search study into a tidy table: one ``TrialRow`` per trial, with the attributes the runner writes.

A row's error, size and feasibility, and the best feasible row, follow the rules of ``studies.reader``
(the ones the search and the export use; ``best_feasible(rows, cap, trial_of=row_trial)`` picks the best row); this
module only lays them out for the report.

    from studies.reader import read_study
    from analysis.study_data import read_trials, study_info
    study = read_study("sqlite:///optuna.db", None)  # None: the storage's only study
    rows = read_trials(study)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

from studies.attrs import RECEPTIVE_FIELD_ATTR, UNUSABLE_STATUSES
from studies.reader import BYTES_PER_KB, is_feasible, study_cap, trial_error, trial_weight_bytes

METRICS = ("val_mean_px", "val_median_px", "val_pck1", "val_pck2", "val_pck3", "val_heatmap_mse")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


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
    receptive_field: int | None  # px of the crop's height that can move a heatmap's centre (None: not recorded)
    epochs: int | None
    family: str | None
    baseline: str | None  # name of the enqueued hand design, if this is one
    params: dict
    metrics: dict  # the val_* floats that are present
    history: tuple[float, ...]
    reason: str | None
    started: datetime | None
    completed: datetime | None
    trial: FrozenTrial = field(repr=False, compare=False)  # the source, for the rules of studies.reader

    @property
    def size_kb(self) -> float | None:
        return None if self.weight_bytes is None else self.weight_bytes / BYTES_PER_KB

    @property
    def completed_ok(self) -> bool:
        """Trained to the end (not stopped, not diverged) with a finite error."""
        return self.outcome == "ok" and self.error is not None

    def feasible(self, max_bytes: int) -> bool:
        """Completed with a finite error and within ``max_bytes`` (``studies.reader.is_feasible``)."""
        return is_feasible(self.trial, max_bytes)

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


def study_info(study: optuna.Study, storage: str) -> StudyInfo:
    attrs = dict(study.user_attrs)
    max_epochs = attrs.get("max_epochs")
    return StudyInfo(
        name=study.study_name,
        storage=storage,
        directions=tuple(d.name.lower() for d in study.directions),
        max_bytes=study_cap(study),
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
        error=_trained_error(t),
        weight_bytes=trial_weight_bytes(t),
        macs=_int_or_none(attrs.get("macs")),
        receptive_field=_int_or_none((attrs.get(RECEPTIVE_FIELD_ATTR) or [None])[0]),
        epochs=_int_or_none(attrs.get("epochs")),
        family=attrs.get("family", t.params.get("family")),
        baseline=attrs.get("baseline"),
        params=dict(t.params),
        metrics={k: float(attrs[k]) for k in METRICS if attrs.get(k) is not None},
        history=tuple(float(v) for v in attrs.get("history") or ()),
        reason=attrs.get("reason"),
        started=t.datetime_start,
        completed=t.datetime_complete,
        trial=t,
    )


def full_budget(rows: list[TrialRow], max_epochs: int | None) -> list[TrialRow]:
    """Completed trials that ran every epoch (all completed trials when the study does not say how many)."""
    return [
        r for r in rows
        if r.completed_ok and (max_epochs is None or r.epochs is None or r.epochs >= max_epochs)
    ]


def row_trial(row: TrialRow) -> FrozenTrial:
    """The trial a row was read from: ``studies.reader.best_feasible(rows, cap, trial_of=row_trial)`` picks a row."""
    return row.trial


def _outcome(t: FrozenTrial) -> str:
    status = t.user_attrs.get("status")
    if status in ("ok", "stopped", "oversize", "diverged"):
        return status
    # No status: the runner never got to write one (a killed process is marked FAIL by the heartbeat).
    return {TrialState.COMPLETE: "ok", TrialState.PRUNED: "stopped", TrialState.FAIL: "failed"}.get(
        t.state, "unfinished"
    )


def _trained_error(t: FrozenTrial) -> float | None:
    """The trial's error where it trained, to the end or stopped early; None where it did not (failed,
    oversize, diverged, still running) or the error is not finite."""
    if t.state == TrialState.FAIL or t.user_attrs.get("status") in UNUSABLE_STATUSES:
        return None
    value = trial_error(t)
    return value if math.isfinite(value) else None


def _int_or_none(value) -> int | None:
    return None if value is None else int(value)
