"""The Pareto set of points to be minimised in both coordinates (error against size, error against MACs), for
drawing; the dominance rule itself is ``studies.reader.pareto_ranks``, the one the search stops by."""
from __future__ import annotations

from typing import Sequence

from studies.reader import pareto_ranks


def pareto_mask(xs: Sequence[float], ys: Sequence[float]) -> list[bool]:
    """``mask[i]`` is True when no other point dominates point ``i`` (both coordinates minimised).

    ``a`` dominates ``b`` when it is no worse in both and strictly better in one, so identical points all stay
    on the front, and of two points with the same x only the lower one does.
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys must have the same length, got {len(xs)} and {len(ys)}")
    return [rank == 0 for rank in pareto_ranks(list(zip(xs, ys)))]


def pareto_front(xs: Sequence[float], ys: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points, ordered by x (then y) so that they can be joined by a line."""
    mask = pareto_mask(xs, ys)
    return sorted((i for i, on in enumerate(mask) if on), key=lambda i: (xs[i], ys[i]))
