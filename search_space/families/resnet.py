"""The original study's ResNet: a 7x7 stem, then residual blocks each doubling the width, all at full
resolution. ``width=8, depth=2`` without batch norm is the hand design (19,479 parameters)."""
from __future__ import annotations

import torch
from torch import nn

from search_space.config import Config
from search_space.families.layers import ConvBN, KeypointNet
from search_space.registry import register_family


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, batch_norm: bool):
        super().__init__()
        self.conv1 = ConvBN(cin, cout, 3, batch_norm=batch_norm)
        self.conv2 = ConvBN(cout, cout, 3, batch_norm=batch_norm, act=False)
        self.shortcut = ConvBN(cin, cout, 1, batch_norm=batch_norm, act=False) if cin != cout else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


@register_family("resnet", depths=(1, 3))
def build(cfg: Config) -> nn.Module:
    layers = [ConvBN(3, cfg.width, 7, batch_norm=cfg.batch_norm)]
    channels = cfg.width
    for _ in range(cfg.depth):
        layers.append(ResidualBlock(channels, channels * 2, cfg.batch_norm))
        channels *= 2
    return KeypointNet(nn.Sequential(*layers), channels, cfg)
