"""pareto_rung_stop: the early stopping of ``--objectives error,size`` (successive halving on Pareto ranks).

Points are (error at the rung in px, size in KB), both minimised; the trial's own point comes first."""
import pytest

from search_engine.trial import pareto_rung_stop

# Three peers on a chain, each worse in both than the one before: fronts 0, 1, 2.
CHAIN = [(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]


def test_a_trial_dominated_by_the_kept_fronts_stops():
    # 4 points, keep ceil(4/3) = 2: fronts 0 and 1 ((1, 10), (2, 20)); (5, 50) is front 3.
    assert pareto_rung_stop((5.0, 50.0), CHAIN, reduction_factor=3)


def test_a_non_dominated_trial_goes_on_even_when_not_best_in_either():
    # Worse error than (1, 10) but smaller: on the front beside it.
    assert not pareto_rung_stop((1.5, 5.0), CHAIN, reduction_factor=3)
    assert not pareto_rung_stop((0.5, 5.0), CHAIN, reduction_factor=3)  # dominates every peer


def test_the_last_kept_front_goes_on_and_the_one_behind_it_stops():
    assert not pareto_rung_stop((2.5, 15.0), CHAIN, reduction_factor=3)  # front 1 beside (2, 20): kept
    assert pareto_rung_stop((2.5, 25.0), CHAIN, reduction_factor=3)  # behind (2, 20): front 2


@pytest.mark.parametrize("rf, peers", [(3, 2), (4, 3), (2, 1)])
def test_fewer_peers_than_the_reduction_factor_never_stop(rf, peers):
    assert not pareto_rung_stop((100.0, 1000.0), CHAIN[:peers], reduction_factor=rf)


def test_as_many_peers_as_the_reduction_factor_can_stop():
    assert pareto_rung_stop((100.0, 1000.0), CHAIN[:2], reduction_factor=2)


def test_a_front_is_kept_whole_when_it_holds_more_than_the_share():
    # 6 points, keep 2: front 0 is (1, 10) alone, front 1 the five ties at (3, 30), kept all together.
    assert not pareto_rung_stop((3.0, 30.0), [(1.0, 10.0)] + [(3.0, 30.0)] * 4, reduction_factor=3)


def test_a_tie_with_the_best_peer_goes_on():
    assert not pareto_rung_stop((1.0, 10.0), CHAIN, reduction_factor=3)


def test_equal_error_but_larger_is_dominated():
    # (1, 20) loses to (1, 10); the three peers are one front of three, which already holds the share of 2.
    peers = [(1.0, 10.0), (0.5, 40.0), (2.0, 5.0)]
    assert pareto_rung_stop((1.0, 20.0), peers, reduction_factor=3)


@pytest.mark.parametrize("position", range(9))
def test_on_a_chain_only_the_best_third_goes_on(position):
    # Nine points, each worse in both than the one before: keep ceil(9/3) = 3, the first three.
    chain = [(float(k), 10.0 * k) for k in range(1, 10)]
    mine, peers = chain[position], chain[:position] + chain[position + 1:]
    assert pareto_rung_stop(mine, peers, reduction_factor=3) == (position >= 3)
