"""benchmarks/first_hour.py reads a study's milestones by wall-clock minutes since its first trial started."""
from __future__ import annotations

import datetime
import sqlite3

import optuna

from benchmarks.first_hour import format_table, milestones

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0)


def add(study, db, minutes_start: float, minutes_end: float, error: float, hand: bool = False, state=None):
    study.add_trial(optuna.trial.create_trial(
        state=state or optuna.trial.TrialState.COMPLETE, value=error if state is None else None,
        user_attrs={"val_mean_px": error, **({"baseline": "unet8"} if hand else {})}))
    trial_id = study.trials[-1]._trial_id
    # create_trial stamps "now": set the times a real search would have recorded (Optuna's own table).
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE trials SET datetime_start = ?, datetime_complete = ? WHERE trial_id = ?",
                   (str(T0 + datetime.timedelta(minutes=minutes_start)),
                    str(T0 + datetime.timedelta(minutes=minutes_end)), trial_id))


def test_best_by_minute_and_when_the_hand_designs_were_beaten(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    db = tmp_path / "s.db"
    study = optuna.create_study(study_name="keypoints", storage=url)
    add(study, db, 0, 4, 12.0, hand=True)
    add(study, db, 0, 8, 30.0, hand=True)
    add(study, db, 4, 9, 14.0)
    add(study, db, 8, 15, 5.0)
    add(study, db, 9, 25, 2.0)
    add(study, db, 15, 16, 99.0, state=optuna.trial.TrialState.PRUNED)
    found = milestones(url)
    assert found["best"] == {5: 12.0, 10: 12.0, 20: 5.0, 30: 2.0, 60: 2.0}
    assert found["beat_hand_designs_min"] == 15.0 and found["finished"] == 6
    assert found["within_5pct_min"] == 25.0  # 2.0 px is the best; 5.0 is not within 5% of it
    assert "15.0 min" in format_table([{"rule": "new", "seed": 0, **found}])
    # Read as its first 20 minutes: the trial that ended at 25 does not count.
    # Against a bar of 4 px (the hand designs' best in another study of the seed), #4 (2 px at 25 min) beats it.
    assert milestones(url, bar=4.0)["beat_hand_designs_min"] == 25.0
    first20 = milestones(url, minutes=20)
    assert first20["best_px"] == 5.0 and first20["finished"] == 5 and first20["within_5pct_min"] == 15.0
