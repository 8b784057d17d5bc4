"""benchmarks/generalisation.py on synthetic cones split into invented teams: every team is held out once,
never trained on in its own fold, scored under every inference choice, and cached runs are not retrained."""
from __future__ import annotations

import json

import pytest

from benchmarks.generalisation import (benchmark, format_summary, group_means, main, parse_groups, teacher_weights,
                                       train_teachers)
from cones.synthetic import make_synthetic, save_supervisely, with_teams
from cones.types import ConeSet
from objectives.recipe import Recipe
from search_space.config import Config

CFG = Config(family="unet", width=4, depth=2, batch_norm=True, head="softmax", loss="ce", batch_size=16, lr=3e-3)
TINY = Recipe(epochs=1)


def invented_teams(n: int = 48) -> ConeSet:
    """Synthetic crops renamed into three teams of whole frames (4 crops a frame)."""
    return with_teams(make_synthetic(n, seed=4), ["alpha", "bravo", "charlie"])


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYPOINT_NAS_CACHE", str(tmp_path / "cache"))


def test_every_team_is_held_out_once_and_scored_under_every_inference():
    data = invented_teams()
    lines = []
    summary = benchmark(data, "invented", [("config", CFG, "tiny", TINY)], seeds=[0], log=lines.append)
    assert summary["teams"] == ["alpha", "bravo", "charlie"]
    folds = summary["folds"]
    assert sorted(f["team"] for f in folds) == ["alpha", "bravo", "charlie"]
    for fold in folds:
        assert fold["test_crops"] == data.teams.count(fold["team"])
        assert fold["train_crops"] == len(data) - fold["test_crops"]  # the held-out team never trains
        assert set(fold["scores"]) == {"parabola", "local", "flip+parabola", "flip+local"}
        assert len(fold["history"]) == 1 and fold["status"] == "ok"
    rows = {row["inference"]: row for row in summary["rows"]}
    plain = rows["parabola"]
    team_means = [plain["teams"][t]["mean_px"] for t in summary["teams"]]
    assert plain["mean"]["mean_px"] == pytest.approx(sum(team_means) / 3)
    assert 0 <= plain["mean"]["gross"] <= 1 and plain["mean"]["pck1"] <= plain["mean"]["pck3"]
    assert sum(n for n, _ in plain["by_span"].values()) == len(data)
    assert "1 to train" not in lines[0] and "3 to train" in lines[0]
    table = format_summary(summary)
    assert "charlie" in table and "mean over teams" in table


def test_groups_of_teams_are_reported_apart_and_bad_groups_refused():
    summary = benchmark(invented_teams(), "invented", [("config", CFG, "tiny", TINY)], seeds=[0], log=lambda *a: None)
    summary["groups"] = parse_groups("near=alpha,bravo; far=charlie")
    row = next(r for r in summary["rows"] if r["inference"] == "parabola")
    means = group_means(row, summary["groups"])
    assert means["near"] == pytest.approx((row["teams"]["alpha"]["mean_px"] + row["teams"]["bravo"]["mean_px"]) / 2)
    assert means["far"] == row["teams"]["charlie"]["mean_px"]
    assert f"near (alpha, bravo) {means['near']:.3f}" in format_summary(summary)
    with pytest.raises(Exception, match="not NAME=TEAM"):
        parse_groups("alpha,bravo")


def test_cached_runs_are_not_trained_again_and_seeds_add_runs():
    data = invented_teams()
    first = benchmark(data, "invented", [("config", CFG, "tiny", TINY)], seeds=[0], log=lambda *a: None)
    lines = []
    again = benchmark(data, "invented", [("config", CFG, "tiny", TINY)], seeds=[0, 1], log=lines.append)
    assert lines[0].startswith("3 runs cached, 3 to train")
    assert [r for r in again["rows"] if r["inference"] == "parabola"][0]["seeds"] == 2
    same = [f for f in again["folds"] if f["seed"] == 0]
    assert sorted(json.dumps(f["scores"], sort_keys=True) for f in same) == \
        sorted(json.dumps(f["scores"], sort_keys=True) for f in first["folds"])


def test_cli_refuses_an_export_with_one_team(tmp_path):
    save_supervisely(make_synthetic(8, seed=1), tmp_path / "export")
    (tmp_path / "best.json").write_text(json.dumps({"config": CFG.to_dict()}))
    with pytest.raises(SystemExit, match="holds one team .*synthetic.*needs 2"):
        main(["--config", str(tmp_path / "best.json"), "--data", str(tmp_path / "export"), "--recipes", "today"])


def test_a_distilling_recipe_learns_from_its_teacher_trained_first_on_the_same_fold():
    data = invented_teams()
    student = Recipe(epochs=1, teacher_width=6)
    runs = [("config", CFG, "distil", student)]
    lines = []
    teacher_rows = train_teachers(data, "invented", runs, log=lines.append)
    assert "3 to train" in lines[0] and {row["model"] for row in teacher_rows} == {"teacher w6"}
    for team in ("alpha", "bravo", "charlie"):
        assert teacher_weights(CFG, student, "invented", team).is_file()  # each fold's own teacher
    summary = benchmark(data, "invented", runs, seeds=[0], log=lambda *a: None)
    assert all(f["status"] == "ok" for f in summary["folds"])
    # The term changes what the student learns: the same run without the teacher ends elsewhere.
    plain = benchmark(data, "invented", [("config", CFG, "plain", Recipe(epochs=1))], seeds=[0], log=lambda *a: None)
    distilled = {f["team"]: f["scores"]["parabola"]["mean_px"] for f in summary["folds"]}
    alone = {f["team"]: f["scores"]["parabola"]["mean_px"] for f in plain["folds"]}
    assert distilled != alone
