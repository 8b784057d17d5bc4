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


def test_replay_mode_mixes_in_only_a_replay_set_of_the_other_teams(tmp_path, monkeypatch):
    import functools

    import torch

    from benchmarks import adapt_curve
    from cones.synthetic import with_teams
    from shipping.adapt import AdaptSettings
    from objectives.heldout_runs import run_path
    from objectives.recipe import RECIPES
    from search_space.config import Config
    from search_space.registry import create_model

    monkeypatch.setenv("KEYPOINT_NAS_CACHE", str(tmp_path / "cache"))
    cfg = Config(family="unet", width=4, depth=2, batch_norm=True, head="softmax", loss="ce")
    data = with_teams(make_synthetic(60, seed=4), ["ka", "kb", "kc"])
    recipe = RECIPES["ship"]
    path = run_path(cfg, recipe, "d", "ka", 0).with_suffix(".pt")
    path.parent.mkdir(parents=True)
    torch.save(create_model(cfg).state_dict(), path)
    mixed = []
    real_fine_tune = adapt_curve.fine_tune

    def spy(model, cfg, labelled, *, shared, **kwargs):
        mixed.append(shared)
        return real_fine_tune(model, cfg, labelled, shared=shared, **kwargs)

    monkeypatch.setattr(adapt_curve, "fine_tune", spy)
    monkeypatch.setattr(adapt_curve, "AdaptSettings", functools.partial(AdaptSettings, steps=2, folds=2))
    monkeypatch.setattr(adapt_curve, "REPLAY_CROPS", 10)
    rows = adapt_curve._curve_task((data, cfg, recipe, "d", "ka", 0, [5], ["mix", "replay"]))
    assert set(rows[0]) >= {"mix", "replay", "offset", "shipped"} and rows[0]["labelled"] == 5
    shared, replay = mixed
    assert len(shared) == 40 and set(shared.teams) == {"kb", "kc"}
    assert len(replay) == 10 and set(replay.names) <= set(shared.names)
    assert "fine-tune, replay set" in adapt_curve.format_table(adapt_curve.summarise(rows))
