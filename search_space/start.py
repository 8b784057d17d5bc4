"""The search's starting points: the best design the product knows and its deeper neighbour, a fresh study's first
sampled trials.

A fresh search, on any team's data, first tries the best config of the 200-trial search on the shared data
(README, "A search on the shared data"; the same config as ``benchmarks/configs/real200-best.json``), so a study
holds a good model within minutes, and TPE, which counts it among its start-up trials, searches from there. Its
``chosen_by`` says "starting point". It passes successive halving's rungs (it is there for its result; the
reference bar still stops it if it is hopeless on the user's data), and no other trial is judged against it
(``search_engine.rungs``, ``search_engine.trial.reference_bar``): a design tuned elsewhere is not a draw from the
sampler.

Its deeper neighbour follows it: the same design one block deeper, as wide as the cap allows, because TPE picks a
depth before a width and rarely leaves the depth its first good trials had. One block shallower is not tried. The
neighbour is a starting point too, and passing the rungs matters most for it: a deeper U-Net starts slowly.

Each is skipped where it is not in the study's space (a smaller ``--max-kb`` than it needs). The measurements
behind each of these rules: docs/decisions.md, "The first hour" ("The starting point", "The starting point's
deeper neighbour", "Starting points pass the rungs").
"""
from __future__ import annotations

from search_space.config import Config
from search_space.space import SearchSpace, arch_key

STARTING_POINT = Config(family="unet", width=7, depth=3, batch_norm=True, head="softmax", loss="ce", expand=2,
                        optimizer="adam", lr=0.0051, momentum=0.9, batch_size=20, weight_decay=3.7e-05, sigma=1.13)


def starting_points(space: SearchSpace) -> list[Config]:
    """``STARTING_POINT`` and its design one block deeper at the widest width within the cap, those the space
    holds."""
    deeper = STARTING_POINT.replace(depth=STARTING_POINT.depth + 1)
    widest = space.widest.get(arch_key(deeper))
    candidates = [STARTING_POINT] + ([deeper.replace(width=widest)] if widest is not None else [])
    return [cfg for cfg in candidates if space.holds(cfg)]
