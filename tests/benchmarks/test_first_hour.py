"""benchmarks/first_hour.py reads a study's milestones by wall-clock minutes since its first trial started."""
from __future__ import annotations

import datetime
import json
import sqlite3

import optuna

from benchmarks.first_hour import format_table, main, milestones

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0)


def add(study, db, minutes_start: float, minutes_end: float, error: float, hand: bool = False, state=None,
        chosen_by: str = "sampler"):
    study.add_trial(optuna.trial.create_trial(
        state=state or optuna.trial.TrialState.COMPLETE, value=error if state is None else None,
        user_attrs={"val_mean_px": error, "chosen_by": chosen_by, **({"baseline": "unet8"} if hand else {})}))
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


def test_the_bar_is_the_best_hand_design_of_any_study_of_the_seed_and_the_starting_point_is_told_apart(tmp_path):
    today = optuna.create_study(study_name="keypoints", storage=f"sqlite:///{tmp_path / 'today-s0.db'}")
    add(today, tmp_path / "today-s0.db", 0, 3, 11.0, hand=True)  # trained to the end in the "today" study
    new = optuna.create_study(study_name="keypoints", storage=f"sqlite:///{tmp_path / 'new-s0.db'}")
    add(new, tmp_path / "new-s0.db", 0, 1, 20.0, hand=True)  # the new rules stopped it early, far behind
    add(new, tmp_path / "new-s0.db", 0, 4, 3.0, chosen_by="starting point")
    add(new, tmp_path / "new-s0.db", 1, 6, 15.0)  # beats the stopped hand design, not the bar
    add(new, tmp_path / "new-s0.db", 4, 9, 8.0)
    out = tmp_path / "table.json"
    # Both studies exist: nothing is run, only read; only "new" is asked for, the bar still comes from "today".
    assert main(["--data", "unused", "--out", str(tmp_path), "--rules", "new", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["bar_px"] == 11.0
    assert row["beat_hand_designs_min"] == 4.0  # the starting point
    assert row["sampler_beat_min"] == 9.0  # the first trial the sampler chose that beat 11 px
