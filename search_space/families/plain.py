"""The simplest family, and the worked example of ``docs/adding-a-family.md``: ``depth`` 3x3 convolutions
(each with optional batch norm and a ReLU) of ``width`` channels, all at full resolution, then the shared
1x1 head to 7 heatmaps. No skips and no downsampling, so its receptive field is only ``2 * depth + 1`` pixels:
a baseline, kept out of the search (``searched=False``)."""
from __future__ import annotations

from torch import nn

from search_space.config import Config
from search_space.families.layers import ConvBN, KeypointNet
from search_space.registry import register_family


@register_family("plain", depths=(2, 8), searched=False)
def build(cfg: Config) -> nn.Module:
    layers = [ConvBN(3 if i == 0 else cfg.width, cfg.width, 3, batch_norm=cfg.batch_norm) for i in range(cfg.depth)]
    return KeypointNet(nn.Sequential(*layers), cfg.width, cfg)  # (N, width, H, W) -> (N, 7, H, W)
