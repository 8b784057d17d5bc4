"""benchmarks/adapt_curve.py: the labelled crops and the test crops of a team never share a frame, the test
crops are the same at every budget, and the table counts fine-tuning's wins against the mean offset."""
from __future__ import annotations

import pytest

from benchmarks.adapt_curve import format_table, labelled_and_test, summarise
from cones.synthetic import make_synthetic


def test_budgets_take_whole_frames_from_the_half_that_is_never_tested():
    team = make_synthetic(80, seed=3)  # 20 frames of 4 crops
    tests = []
    for budget in (5, 10, 30):
        labelled, test = labelled_and_test(team, budget, seed=1)
        assert len(labelled) == budget
        assert not set(labelled.frames) & set(test.frames)
        tests.append(test.names)
    assert tests[0] == tests[1] == tests[2] and len(tests[0]) == 40
    small, _ = labelled_and_test(team, 10, seed=1)
    large, _ = labelled_and_test(team, 30, seed=1)
    assert set(small.names) <= set(large.names)  # a larger budget adds crops


def test_table_averages_seeds_and_counts_wins():
    def row(seed, offset, mix):
        return {"team": "a", "seed": seed, "budget": 10, "shipped": {"mean_px": 2.0, "pck2": 0.5},
                "offset": {"mean_px": offset, "pck2": 0.6}, "mix": {"mean_px": mix, "pck2": 0.7}}
    table = summarise([row(0, 1.8, 1.5), row(1, 1.6, 1.7)])
    assert table[0]["mix"]["mean_px"] == pytest.approx(1.6) and table[0]["offset"]["mean_px"] == pytest.approx(1.7)
    assert table[0]["mix_beats_offset"] == 1
    assert "mix 1/2" in format_table(table)
