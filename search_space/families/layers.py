"""Building blocks shared by the families.

Every batch norm directly follows a convolution inside ``ConvBN``, so a deployed model folds it into that
convolution's weights and bias; ``search_space.size`` relies on this.
"""
from __future__ import annotations

import torch
from torch import nn

from search_space.config import Config


class ConvBN(nn.Module):
    """Convolution, optional batch norm, optional ReLU. Without batch norm the convolution has a bias."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, *, batch_norm: bool, act: bool = True,
                 groups: int = 1, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups,
                              bias=not batch_norm)
        self.bn = nn.BatchNorm2d(cout) if batch_norm else None
        self.act = nn.ReLU(inplace=True) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x


class Head(nn.Module):
    """1x1 convolution to one heatmap per keypoint, then the output activation.

    ``softmax`` normalises each heatmap over its pixels (a probability map per keypoint).
    """

    def __init__(self, cin: int, keypoints: int, head: str):
        super().__init__()
        self.conv = nn.Conv2d(cin, keypoints, 1)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.finish(self.conv(x))

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 7, H, W) logits -> heatmaps after the output activation."""
        if self.head == "sigmoid":
            return torch.sigmoid(x)
        if self.head == "softmax":
            n, k, h, w = x.shape
            return torch.softmax(x.reshape(n, k, h * w), dim=-1).reshape(n, k, h, w)
        return x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class KeypointNet(nn.Module):
    """A body producing features at input resolution, and a ``Head``.

    ``forward`` gives heatmaps after the output activation; ``logits`` the raw 1x1 output, which the
    spatial cross-entropy loss needs (numerically safer than log of a softmax).
    """

    def __init__(self, body: nn.Module, features: int, cfg: Config, keypoints: int = 7):
        super().__init__()
        self.body = body
        self.head = Head(features, keypoints, cfg.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.logits(self.body(x))
