"""benchmarks/search_quality.py end to end on synthetic cones of invented teams: every arm runs its own fresh
study, each study's best is scored leave-one-team-out, the table says how far each is from the best known, and a
rerun keeps what is there."""
from __future__ import annotations

import json

import optuna
import pytest

from benchmarks.search_quality import main
from search_space.config import Config

pytestmark = pytest.mark.slow

KNOWN = Config(family="unet", width=4, depth=2, batch_norm=True, head="softmax", loss="ce", batch_size=16, lr=3e-3)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYPOINT_NAS_CACHE", str(tmp_path / "cache"))


def test_each_arm_s_best_is_scored_leave_one_team_out_and_compared_with_the_best_known(tmp_path, teams_exports,
                                                                                       capsys):
    first, second = teams_exports
    (tmp_path / "known.json").write_text(json.dumps({"config": KNOWN.to_dict()}))
    out = tmp_path / "sq"
    argv = ["--data", str(first), "--data", str(second), "--val-teams", "kb", "--trials", "3", "--workers", "1",
            "--seeds", "0", "--caps", "80", "--arms", "product,random,plain", "--epochs", "1", "--loto-epochs", "1",
            "--loto-seeds", "1", "--also", str(tmp_path / "known.json"), "--out", str(out),
            "--json", str(tmp_path / "t.json"), "--png", str(tmp_path / "t.png"), "--groups", "near=ka,kb;far=kc"]
    assert main(argv) == 0
    table = json.loads((tmp_path / "t.json").read_text())
    assert [r["arm"] for r in table["studies"]] == ["product", "random", "plain"]
    assert table["teams"] == ["ka", "kb", "kc"]
    for row in table["studies"]:
        assert row["trials"] >= 3 and row["config"] is not None and row["weight_bytes"] <= 80 * 1024
        assert row["loto_px"] > 0 and row["above_best_known"] >= 0 and set(row["groups"]) == {"near", "far"}
    best = min([r["loto_px"] for r in table["studies"]] + [table["also"][0]["loto_px"]])
    assert table["best_known"]["80"] == best
    plain = optuna.load_study(study_name="keypoints", storage=f"sqlite:///{out / 'plain-80kb-s0.db'}")
    assert not any("baseline" in t.user_attrs for t in plain.trials)  # no hand designs in plain Optuna
    product = optuna.load_study(study_name="keypoints", storage=f"sqlite:///{out / 'product-80kb-s0.db'}")
    assert any("baseline" in t.user_attrs for t in product.trials)
    assert (tmp_path / "t.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "running plain" in printed and "vs best" in printed

    assert main(argv) == 0  # a rerun keeps the studies and the cached held-out runs
    again = capsys.readouterr().out
    assert "running" not in again and " 0 to train" in again
