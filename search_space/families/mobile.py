"""A family for the <= 80 KB regime: an inverted-residual (MobileNetV2-style) encoder-decoder.

Depthwise-separable convolutions spend few weights per pixel of receptive field, so the encoder can go
deeper and wider than a dense U-Net of the same size. Each level halves the resolution with a strided
inverted-residual block and doubles the width; the decoder upsamples (nearest), adds a 1x1-projected skip,
and refines with one inverted-residual block per level.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_space.config import Config
from search_space.families.layers import ConvBN, KeypointNet
from search_space.registry import register_family


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, stride: int, batch_norm: bool):
        super().__init__()
        hidden = cin * expand
        self.block = nn.Sequential(
            ConvBN(cin, hidden, 1, batch_norm=batch_norm),
            ConvBN(hidden, hidden, 3, batch_norm=batch_norm, groups=hidden, stride=stride),
            ConvBN(hidden, cout, 1, batch_norm=batch_norm, act=False),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class MobileBody(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        bn, e = cfg.batch_norm, cfg.expand
        widths = [cfg.width * 2**level for level in range(cfg.depth)]
        self.stem = nn.Sequential(
            ConvBN(3, widths[0], 3, batch_norm=bn),
            InvertedResidual(widths[0], widths[0], e, 1, bn),
        )
        self.down = nn.ModuleList(
            InvertedResidual(widths[i], widths[i + 1], e, 2, bn) for i in range(len(widths) - 1)
        )
        self.lateral = nn.ModuleList(
            ConvBN(widths[i + 1], widths[i], 1, batch_norm=bn, act=False) for i in range(len(widths) - 1)
        )
        self.up = nn.ModuleList(InvertedResidual(widths[i], widths[i], e, 1, bn) for i in range(len(widths) - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        for level in reversed(range(len(self.up))):
            skip = skips[level]
            x = F.interpolate(self.lateral[level](x), size=skip.shape[-2:], mode="nearest")
            x = self.up[level](x + skip)
        return x


@register_family("mobile")
def build(cfg: Config) -> nn.Module:
    return KeypointNet(MobileBody(cfg), cfg.width, cfg)
