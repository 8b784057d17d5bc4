import pytest

from analysis.pareto import pareto_front, pareto_mask


def test_dominated_points_are_dropped():
    xs = [10, 20, 20, 30, 40, 50]
    ys = [5.0, 3.0, 4.0, 3.0, 2.0, 6.0]
    # (20, 4) loses to (20, 3); (30, 3) ties (20, 3) in error but is bigger; (50, 6) loses to everything.
    assert pareto_mask(xs, ys) == [True, True, False, False, True, False]


def test_identical_points_both_stay():
    assert pareto_mask([1, 1, 2], [3.0, 3.0, 1.0]) == [True, True, True]


def test_front_is_ordered_by_x():
    xs = [40, 10, 20, 25]
    ys = [1.0, 5.0, 2.0, 3.0]
    assert pareto_front(xs, ys) == [1, 2, 0]


def test_single_and_empty():
    assert pareto_mask([7], [1.0]) == [True]
    assert pareto_mask([], []) == []


def test_lengths_must_match():
    with pytest.raises(ValueError, match="same length"):
        pareto_mask([1, 2], [1.0])
