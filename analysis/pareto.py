"""The Pareto set of points to be minimised in both coordinates (error against size, error against MACs)."""
from __future__ import annotations

from typing import Sequence


def pareto_mask(xs: Sequence[float], ys: Sequence[float]) -> list[bool]:
    """``mask[i]`` is True when no other point dominates point ``i`` (both coordinates minimised).

    ``a`` dominates ``b`` when it is no worse in both and strictly better in one, so identical points all stay
    on the front, and of two points with the same x only the lower one does.
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys must have the same length, got {len(xs)} and {len(ys)}")
    # Sweep by x (then y): a point is on the front when its y beats every y seen at a strictly smaller x, and is
    # no worse than the best y at its own x.
    order = sorted(range(len(xs)), key=lambda i: (xs[i], ys[i]))
    mask = [False] * len(xs)
    best_y_before = float("inf")  # lowest y among points with x strictly smaller than the current x
    k = 0
    while k < len(order):
        x = xs[order[k]]
        group = []
        while k < len(order) and xs[order[k]] == x:
            group.append(order[k])
            k += 1
        lowest = ys[group[0]]  # sorted by y within the same x
        for i in group:
            mask[i] = ys[i] == lowest and lowest < best_y_before
        best_y_before = min(best_y_before, lowest)
    return mask


def pareto_front(xs: Sequence[float], ys: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points, ordered by x (then y) so that they can be joined by a line."""
    mask = pareto_mask(xs, ys)
    return sorted((i for i, on in enumerate(mask) if on), key=lambda i: (xs[i], ys[i]))
