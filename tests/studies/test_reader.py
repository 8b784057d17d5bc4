"""studies/reader.py: the rules every reader of a study shares, on hand-made trials."""
from __future__ import annotations

import itertools
import math
import random
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from studies.reader import (DEFAULT_MAX_BYTES, StudyNotFound, best_feasible, is_feasible, is_usable, pareto_ranks,
                            read_study, study_cap, trial_error, trial_weight_bytes)

ROOT = Path(__file__).resolve().parents[2]
CAP = 80 * 1024


def trial(number: int = 0, state=TrialState.COMPLETE, error: float | None = 2.0, size: int | None = 40_000,
          status: str | None = "ok", **attrs) -> optuna.trial.FrozenTrial:
    """A trial in the runner's format: the error as the objective (when COMPLETE) and as ``val_mean_px``."""
    if error is not None:
        attrs["val_mean_px"] = error
    if size is not None:
        attrs["weight_bytes"] = size
    if status is not None:
        attrs["status"] = status
    t = create_trial(state=state, value=error if state == TrialState.COMPLETE else None, user_attrs=attrs)
    t.number = number
    return t


def test_error_is_the_first_objective_then_the_attribute_then_inf():
    assert trial_error(create_trial(values=[1.5, 30.0], user_attrs={"val_mean_px": 9.0})) == 1.5
    assert trial_error(trial(state=TrialState.PRUNED, error=4.0)) == 4.0  # stopped early: no objective value
    assert trial_error(create_trial(state=TrialState.FAIL)) == math.inf


def test_weight_bytes_is_the_attribute_or_unknown():
    assert trial_weight_bytes(trial(size=4096)) == 4096
    assert trial_weight_bytes(trial(size=None)) is None


def test_weight_bytes_of_a_trial_before_the_attribute_is_measured_from_its_config():
    from search_space.config import Config
    from search_space.size import measure

    cfg = Config(family="unet", width=4, depth=2)
    assert trial_weight_bytes(trial(size=None, config=cfg.to_dict())) == measure(cfg).weight_bytes


@pytest.mark.parametrize("t, usable", [
    (trial(), True),
    (trial(status=None), True),  # written before the runner recorded a status
    (trial(state=TrialState.PRUNED, status="stopped"), False),
    (trial(state=TrialState.PRUNED, error=None, status="oversize"), False),
    (trial(state=TrialState.FAIL, error=None, status="diverged"), False),
    (trial(status="oversize"), False),
    (trial(error=math.inf), False),
], ids=["ok", "no-status", "stopped", "oversize", "diverged", "complete-but-oversize", "infinite-error"])
def test_usable_means_complete_with_a_finite_error(t, usable):
    assert is_usable(t) == usable


def test_feasible_means_usable_and_within_the_cap():
    assert is_feasible(trial(size=CAP), CAP)
    assert not is_feasible(trial(size=CAP + 1), CAP)
    assert not is_feasible(trial(size=None), CAP)  # a size nobody knows never passes a cap
    assert not is_feasible(trial(state=TrialState.PRUNED, size=100), CAP)


def test_best_feasible_is_the_lowest_error_within_the_cap():
    trials = [trial(0, error=3.0), trial(1, error=1.0, size=CAP + 1), trial(2, error=2.0),
              trial(3, state=TrialState.PRUNED, error=0.5, status="stopped")]
    assert best_feasible(trials, CAP).number == 2
    assert best_feasible(trials, 2 * CAP).number == 1


def test_best_feasible_ties_go_to_the_smaller_then_the_earlier():
    trials = [trial(0, size=30_000), trial(1, size=20_000), trial(2, size=20_000)]
    assert best_feasible(trials, CAP).number == 1


def test_best_feasible_of_nothing_feasible_is_none():
    assert best_feasible([trial(0, size=CAP + 1), trial(1, state=TrialState.FAIL, error=None)], CAP) is None
    assert best_feasible([], CAP) is None


def test_pareto_ranks_peel_fronts():
    points = [(1, 10), (2, 5), (2, 10), (3, 12), (1, 10), (0.5, 40)]
    # (1, 10) twice, (2, 5) and (0.5, 40) are the front; (2, 10) is behind (1, 10); (3, 12) behind (2, 10).
    assert pareto_ranks(points) == [0, 0, 1, 2, 0, 0]
    assert pareto_ranks([]) == []


def _peeled(points):
    """The definition, the slow way: rank k is what no remaining point dominates once ranks < k are gone."""
    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b)) and a != b

    ranks, remaining, rank = [None] * len(points), set(range(len(points))), 0
    while remaining:
        front = {i for i in remaining if not any(dominates(points[j], points[i]) for j in remaining)}
        for i in front:
            ranks[i] = rank
        remaining -= front
        rank += 1
    return ranks


def test_pareto_ranks_match_the_definition_on_random_points_with_ties():
    rng = random.Random(0)
    for n, dims in itertools.product((1, 2, 7, 30), (1, 2, 3)):
        points = [tuple(rng.randint(0, 4) for _ in range(dims)) for _ in range(n)]
        assert pareto_ranks(points) == _peeled(points), points


def test_read_study_names_a_missing_file_and_does_not_create_it(tmp_path):
    url = f"sqlite:///{tmp_path}/nothing.db"
    with pytest.raises(StudyNotFound, match="nothing.db"):
        read_study(url, None)
    assert not (tmp_path / "nothing.db").exists()


def test_read_study_of_an_empty_storage_names_the_url(tmp_path):
    url = f"sqlite:///{tmp_path}/empty.db"
    optuna.create_study(storage=url, study_name="x")
    optuna.delete_study(study_name="x", storage=url)
    with pytest.raises(StudyNotFound, match=f"{url} holds no study"):
        read_study(url, None)


def test_read_study_needs_a_name_when_the_storage_holds_several(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    optuna.create_study(storage=url, study_name="a").set_user_attr("max_bytes", 81920)
    optuna.create_study(storage=url, study_name="b", directions=["minimize", "minimize"])
    with pytest.raises(StudyNotFound, match="holds 2 studies; pick one with --study: a, b"):
        read_study(url, None)
    with pytest.raises(StudyNotFound, match="--study 'c' is not in .*; its studies: a, b"):
        read_study(url, "c")
    assert read_study(url, "b").study_name == "b"
    assert study_cap(read_study(url, "a")) == 81920


def test_the_default_cap_is_the_searchs():
    from search_space.cap import max_bytes

    assert DEFAULT_MAX_BYTES == max_bytes()
    assert study_cap(optuna.create_study()) == DEFAULT_MAX_BYTES


def test_importing_the_reader_does_not_import_torch():
    code = "import studies.reader, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
