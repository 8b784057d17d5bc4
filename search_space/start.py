"""The search's starting point: the best design the product knows, a fresh study's first sampled trial.

A fresh search, on any team's data, first tries the best config of the 200-trial search on the shared data
(README, "A search on the shared data"; the same config as ``benchmarks/configs/real200-best.json``): a
U-Net that, trained on three teams' cameras, beats the original study's hand designs by a wide margin. So a
study holds a good model within minutes, and TPE, which counts it among its start-up trials, searches from
there. Its ``chosen_by`` says "starting point". It may be stopped like any sampled trial, but no other trial is
judged against it (``objectives.rungs``, ``objectives.trial.reference_bar``): a design tuned elsewhere is not a
draw from the sampler, and as a peer it stopped nearly every early trial (in a 200-trial study on the shared
data the best stayed the starting point itself). Why: docs/decisions.md, "The first hour".

The starting point is skipped where it is not in the study's space (a smaller ``--max-kb`` than it needs).
"""
from __future__ import annotations

from search_space.config import Config
from search_space.space import SearchSpace

STARTING = "starting point"  # the ``chosen_by`` of its trial

STARTING_POINT = Config(family="unet", width=7, depth=3, batch_norm=True, head="softmax", loss="ce", expand=2,
                        optimizer="adam", lr=0.0051, momentum=0.9, batch_size=20, weight_decay=3.7e-05, sigma=1.13)


def starting_point(space: SearchSpace) -> Config | None:
    """``STARTING_POINT`` when the space holds its architecture within the cap, else None."""
    return STARTING_POINT if space.holds(STARTING_POINT) else None
