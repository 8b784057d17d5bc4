"""The original study's U-Net: encoder levels separated by 2x max-pooling, nearest upsampling, skips
concatenated. ``width=8, depth=3`` without batch norm is the hand design (17,663 parameters): two 3x3
convolutions per encoder level, one at the bottom level, one per decoder level."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_space.config import Config
from search_space.families.layers import ConvBN, KeypointNet
from search_space.registry import register_family


class UNetBody(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        bn = cfg.batch_norm
        widths = [cfg.width * 2**level for level in range(cfg.depth)]
        self.encoder = nn.ModuleList()
        cin = 3
        for level, w in enumerate(widths):
            bottom = level == len(widths) - 1
            convs = [ConvBN(cin, w, 3, batch_norm=bn)] + ([] if bottom else [ConvBN(w, w, 3, batch_norm=bn)])
            self.encoder.append(nn.Sequential(*convs))
            cin = w
        # decoder[i] turns (upsampled level i+1, skip of level i) into level i's width
        self.decoder = nn.ModuleList(
            ConvBN(widths[i + 1] + widths[i], widths[i], 3, batch_norm=bn) for i in range(len(widths) - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.encoder):
            if level:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            x = block(x)
            skips.append(x)
        for level in reversed(range(len(self.decoder))):
            skip = skips[level]
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = self.decoder[level](torch.cat([x, skip], dim=1))
        return x


@register_family("unet", depths=(2, 4))
def build(cfg: Config) -> nn.Module:
    return KeypointNet(UNetBody(cfg), cfg.width, cfg)
