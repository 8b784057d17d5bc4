"""A family for the <= 80 KB regime: an inverted-residual (MobileNetV2-style) encoder-decoder.

Depthwise-separable convolutions spend few weights per pixel of receptive field, so the encoder can go
deeper and wider than a dense U-Net of the same size. Only the stem and the last refinement run at full
resolution, and neither expands the channels: expanded tensors at 64 x 48 make a CPU step memory-bound.
Each level halves the resolution with a strided inverted-residual block and doubles the width; the decoder
upsamples (nearest), adds a 1x1-projected skip, and refines each level with one block.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_space.config import Config
from search_space.families.layers import ConvBN, KeypointNet
from search_space.registry import register_family


class InvertedResidual(nn.Module):
    """1x1 expand (skipped when expand == 1), 3x3 depthwise, 1x1 project; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int, batch_norm: bool):
        super().__init__()
        hidden = cin * expand
        expansion = [ConvBN(cin, hidden, 1, batch_norm=batch_norm)] if expand > 1 else []
        self.block = nn.Sequential(
            *expansion,
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
        self.stem = ConvBN(3, widths[0], 3, batch_norm=bn)
        self.down = nn.ModuleList(
            InvertedResidual(widths[i], widths[i + 1], e, 2, bn) for i in range(len(widths) - 1)
        )
        self.lateral = nn.ModuleList(
            ConvBN(widths[i + 1], widths[i], 1, batch_norm=bn, act=False) for i in range(len(widths) - 1)
        )
        # Full resolution (level 0) refines without expansion; lower levels expand.
        self.up = nn.ModuleList(
            InvertedResidual(widths[i], widths[i], e if i else 1, 1, bn) for i in range(len(widths) - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        for level in reversed(range(len(self.up))):
            skip = skips[level]
            x = F.interpolate(self.lateral[level](x), size=skip.shape[-2:], mode="nearest")
            x = F.relu(self.up[level](x + skip))
        return x


@register_family("mobile", depths=(2, 4), knobs={"expand": (1, 4)}, labels={"expand": "x{}"},
                 channels_last=False)  # NCHW measured ~1.7x faster
def build(cfg: Config) -> nn.Module:
    if cfg.depth < 2:
        raise ValueError(f"mobile needs depth >= 2 (levels), got {cfg.depth}")
    return KeypointNet(MobileBody(cfg), cfg.width, cfg)
