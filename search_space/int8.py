"""The int8 weight format: what the deployed int8 model stores, and the fake-quantized convolution that computes
what it computes.

Every convolution of the batch-norm-folded network is stored as (ONNX QDQ, ``deploy/qdq.py`` writes it):

    weight             int8     per output channel, symmetric: q = round(w / scale) in [-127, 127]
    weight_scale       float32  one per output channel (max |w| of the channel / 127)
    weight_zero_point  int8     one per output channel (all 0: symmetric)
    bias               float32  one per output channel, when the folded convolution has one (kept in float:
                                exact, and as many bytes as the int32 bias of a fully integer graph)
    input_scale        float32  one: the convolution's input is quantized per tensor, uint8, asymmetric
    input_zero_point   uint8    one

Any parameter outside a convolution (none in today's families) stays float32, and so does the decode.
``conv_bytes`` is this table in bytes; ``search_space.size.measure(cfg, weights="int8")`` adds it up over a
model and ``stored_tensors`` lists the tensors themselves, which the export writes and checks against it.
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np
import torch
from torch import nn

WEIGHT_RANGE = (-127, 127)  # symmetric int8 (no -128, so -w is representable, as ONNX Runtime and TensorRT do)
ACTIVATION_RANGE = (0, 255)  # uint8, asymmetric: ReLU outputs and [0, 1] images lose no code to negatives
FLOAT32_BYTES = 4
INPUT_QPARAM_BYTES = FLOAT32_BYTES + 1  # the input's scale and zero point
CHANNEL_QPARAM_BYTES = FLOAT32_BYTES + 1  # a weight channel's scale and zero point
EMA = 0.01  # quantization-aware training: weight of each batch's range in the input range's moving average


def conv_bytes(weights: int, out_channels: int, bias: bool) -> int:
    """Bytes the int8 model stores for one folded convolution with ``weights`` weights."""
    return (weights + out_channels * CHANNEL_QPARAM_BYTES + (out_channels * FLOAT32_BYTES if bias else 0)
            + INPUT_QPARAM_BYTES)


class QuantConv2d(nn.Conv2d):
    """A folded convolution that computes what the int8 model computes: the input fake-quantized per tensor
    (uint8), the weight per output channel (int8, symmetric), the bias in float32.

    The input's range (``input_range``: min, max) is what sets its scale. ``observing`` (calibration) records
    the range of every batch and computes in float; in training mode (quantization-aware fine-tuning) the range
    follows a moving average of the batches' ranges; in eval mode it is frozen. The weight's scales always
    follow the current weights.
    """

    observing: bool = False

    @classmethod
    def from_float(cls, conv: nn.Conv2d) -> "QuantConv2d":
        quant = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None)
        quant.load_state_dict(conv.state_dict(), strict=False)
        return quant.to(conv.weight.device)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("input_range", torch.tensor([math.inf, -math.inf]))  # nothing observed yet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            self._widen(x.detach())
            return super().forward(x)
        if self.training:
            self._follow(x.detach())
        scale, zero_point = self.input_qparams()
        x = torch.fake_quantize_per_tensor_affine(x, scale, zero_point, *ACTIVATION_RANGE)
        return self._conv_forward(x, self.fake_quantized_weight(), self.bias)

    @torch.no_grad()
    def _widen(self, x: torch.Tensor) -> None:
        low, high = torch.aminmax(x)
        self.input_range.copy_(torch.stack([self.input_range[0].minimum(low), self.input_range[1].maximum(high)]))

    @torch.no_grad()
    def _follow(self, x: torch.Tensor) -> None:
        self.input_range.lerp_(torch.stack(torch.aminmax(x)), EMA)

    def input_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 scale and int32 zero point of the input, from its range widened to hold 0 (which must be exact:
        zero padding)."""
        low, high = self.input_range[0].clamp(max=0), self.input_range[1].clamp(min=0)
        if not torch.isfinite(low - high):
            raise RuntimeError("QuantConv2d has no input range: calibrate it first (shipping.quantize.calibrate)")
        qmin, qmax = ACTIVATION_RANGE
        scale = ((high - low) / (qmax - qmin)).clamp(min=torch.finfo(torch.float32).eps).float()
        zero_point = (qmin - torch.round(low / scale)).clamp(qmin, qmax).to(torch.int32)
        return scale, zero_point

    def weight_scale(self) -> torch.Tensor:
        """(C_out,) float32: each output channel's largest |weight| over 127 (1 for an all-zero channel)."""
        largest = self.weight.detach().abs().amax(dim=(1, 2, 3))
        return torch.where(largest > 0, largest / WEIGHT_RANGE[1], torch.ones_like(largest)).float()

    def quantized_weight(self) -> torch.Tensor:
        """The int8 weight the file stores."""
        scale = self.weight_scale().reshape(-1, 1, 1, 1)
        return torch.round(self.weight.detach() / scale).clamp(*WEIGHT_RANGE).to(torch.int8)

    def fake_quantized_weight(self) -> torch.Tensor:
        scale = self.weight_scale()
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(self.weight, scale, zero, 0, *WEIGHT_RANGE)


def fake_quantize(folded: nn.Module) -> nn.Module:
    """A copy of a batch-norm-folded network with every ``nn.Conv2d`` a ``QuantConv2d`` (not yet calibrated)."""
    return _replaced(folded, lambda m: type(m) is nn.Conv2d, QuantConv2d.from_float)


def _replaced(net: nn.Module, which: Callable[[nn.Module], bool], make: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """A copy of ``net`` with every submodule ``which`` accepts replaced by ``make(submodule)``."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in module.named_children():
            if which(child):
                setattr(module, name, make(child))
    return net


def quantized_convs(net: nn.Module) -> dict[str, QuantConv2d]:
    return {name: m for name, m in net.named_modules() if isinstance(m, QuantConv2d)}


def set_observing(net: nn.Module, observing: bool) -> None:
    for conv in quantized_convs(net).values():
        conv.observing = observing


@torch.no_grad()
def stored_tensors(net: nn.Module) -> dict[str, np.ndarray]:
    """Every tensor the int8 model stores, by name (``<module>.weight``, ``<module>.weight_scale``, ...; the
    table in this module's docstring), in the dtype it is stored in."""
    convs = quantized_convs(net)
    stored, counted = {}, set()
    for name, conv in convs.items():
        prefix = f"{name}." if name else ""
        scale, zero_point = conv.input_qparams()
        stored[prefix + "weight"] = conv.quantized_weight().numpy()
        stored[prefix + "weight_scale"] = conv.weight_scale().numpy()
        stored[prefix + "weight_zero_point"] = np.zeros(conv.out_channels, np.int8)
        if conv.bias is not None:
            stored[prefix + "bias"] = conv.bias.detach().float().numpy()
        stored[prefix + "input_scale"] = scale.numpy()
        stored[prefix + "input_zero_point"] = zero_point.numpy().astype(np.uint8)
        counted.update(id(p) for p in conv.parameters())
    for name, parameter in net.named_parameters():
        if id(parameter) not in counted:
            stored[name] = parameter.detach().float().numpy()
    return stored


def dequantized(net: nn.Module) -> nn.Module:
    """A plain float copy of a fake-quantized network: each ``QuantConv2d`` an ``nn.Conv2d`` holding the
    dequantized weight (what the exporter traces before ``deploy/qdq.py`` puts the int8 storage in)."""
    return _replaced(net, lambda m: isinstance(m, QuantConv2d), _plain_conv)


@torch.no_grad()
def _plain_conv(quant: QuantConv2d) -> nn.Conv2d:
    conv = nn.Conv2d(quant.in_channels, quant.out_channels, quant.kernel_size, stride=quant.stride,
                     padding=quant.padding, dilation=quant.dilation, groups=quant.groups, bias=quant.bias is not None)
    conv.weight.copy_(quant.fake_quantized_weight())
    if quant.bias is not None:
        conv.bias.copy_(quant.bias)
    return conv.to(quant.weight.device)
