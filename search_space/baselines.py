"""The original study's hand designs, run inside every study as the reference the search must beat.

Both trained with Adam at 1e-3, batch 64 and the heatmap MSE. The study used no weight decay; the search
space's weight decay is log-scaled, so its floor (1e-6, negligible) stands in for zero.
"""
from __future__ import annotations

from search_space.config import Config
from search_space.space import WEIGHT_DECAY_RANGE

RESNET8 = Config(family="resnet", width=8, depth=2)  # 19,479 parameters
UNET8 = Config(family="unet", width=8, depth=3)  # 17,663 parameters


def hand_designs() -> dict[str, Config]:
    """Name -> config: both designs, linear and spatial-softmax heads, with and without batch norm."""
    designs = {}
    for name, base in (("resnet8", RESNET8), ("unet8", UNET8)):
        for head in ("linear", "softmax"):
            for batch_norm in (False, True):
                label = f"{name}-{head}" + ("-bn" if batch_norm else "")
                designs[label] = base.replace(head=head, batch_norm=batch_norm, optimizer="adam", lr=1e-3,
                                              batch_size=64, weight_decay=WEIGHT_DECAY_RANGE[0], loss="mse")
    return designs
