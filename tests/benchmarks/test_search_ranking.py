"""benchmarks/search_ranking.py: picks the study's best complete trials within the cap (never a hand design),
and ranks their search error against their held-out errors."""
from __future__ import annotations

import optuna
import pytest

from analysis.study_data import read_trials
from benchmarks.search_ranking import format_table, ranking_table, top_trials
from search_space.config import Config


def fake_study() -> optuna.Study:
    study = optuna.create_study()
    for number, (error, weight_bytes, baseline) in enumerate([(2.0, 50_000, None), (1.0, 90_000, None),
                                                              (1.5, 60_000, None), (0.5, 40_000, "unet8"),
                                                              (3.0, 70_000, None), (2.5, 30_000, None)]):
        trial = study.ask()
        cfg = Config(family="unet", width=4 + number, depth=2)
        attrs = {"config": cfg.to_dict(), "weight_bytes": weight_bytes, "status": "ok", "val_mean_px": error,
                 "epochs": 9}
        if baseline:
            attrs["baseline"] = baseline
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        study.tell(trial, error)
    return study


def test_top_trials_skip_oversize_and_hand_designs():
    study = fake_study()
    picked = top_trials(read_trials(study), study, 81_920, 3)
    assert [number for number, _, _ in picked] == [2, 0, 5]  # 1 is over the cap, 3 a hand design
    assert picked[0][2] == Config(family="unet", width=6, depth=2)


def test_ranking_correlates_search_error_with_the_other_teams():
    picked = [(2, 1.5, None), (0, 2.0, None), (5, 2.5, None)]
    # The search's own validation team (tuwr) agrees with its ranking; the other teams rank the trials the
    # other way round: the honest rho is the one on the other teams.
    teams = {"#2": (3.0, 3.0, 1.0), "#0": (2.0, 2.0, 5.0), "#5": (1.0, 1.0, 9.0)}  # a, b, tuwr
    rows = [{"model": name, "inference": "parabola",
             "teams": {t: {"mean_px": v} for t, v in zip(("a", "b", "tuwr"), values)},
             "mean": {"mean_px": sum(values) / 3}} for name, values in teams.items()]
    table = ranking_table(picked, {"teams": ["a", "b", "tuwr"], "rows": rows}, {"tuwr"})
    assert table["others"] == ["a", "b"]
    assert table["rho_others"] == pytest.approx(-1.0)
    assert table["rho_mean"] == pytest.approx(1.0)
    assert [t["others_px"] for t in table["trials"]] == [3.0, 2.0, 1.0]
    assert "tuwr*" in format_table(table, ["a", "b", "tuwr"], {"tuwr"})
