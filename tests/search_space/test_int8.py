"""The int8 format: measure(cfg, weights="int8") is exact (the bytes of the tensors the int8 model stores), and the
fake-quantized convolution computes with int8 weights and uint8 inputs."""
import numpy as np
import pytest
import torch

from search_space.config import Config
from search_space.int8 import QuantConv2d, conv_bytes, dequantized, fake_quantize, stored_tensors
from search_space.registry import create_model, families
from search_space.size import fold_batch_norm, measure, weight_bytes
from tests.search_space.test_size import random_configs, trained_in_bn_stats


def calibrated(cfg: Config) -> torch.nn.Module:
    torch.manual_seed(0)
    net = fake_quantize(fold_batch_norm(trained_in_bn_stats(create_model(cfg))))
    for conv in net.modules():
        if isinstance(conv, QuantConv2d):
            conv.input_range.copy_(torch.tensor([-0.5, 2.0]))
    return net


@pytest.mark.parametrize("cfg", list(random_configs(n=16, seed=1)), ids=str)
def test_int8_bytes_equal_the_stored_tensors(cfg):
    stored = stored_tensors(calibrated(cfg))
    assert measure(cfg, weights="int8").weight_bytes == sum(array.nbytes for array in stored.values())


@pytest.mark.parametrize("family", families())
def test_int8_stores_int8_weights_in_well_under_half_the_bytes(family):
    cfg = Config(family=family, width=8, depth=2, batch_norm=True)
    stored = stored_tensors(calibrated(cfg))
    assert {a.dtype for k, a in stored.items() if k.endswith(".weight")} == {np.dtype(np.int8)}
    assert {a.dtype for k, a in stored.items() if k.endswith("input_zero_point")} == {np.dtype(np.uint8)}
    # a quarter, plus per-channel scales and float biases (depthwise layers have few weights per channel)
    assert 0.25 < weight_bytes(cfg, "int8") / weight_bytes(cfg) < 0.45


def test_the_float32_size_is_the_default_and_keeps_its_count():
    cfg = Config(family="unet", width=8, depth=3)
    assert measure(cfg) == measure(cfg, weights="float32")
    assert weight_bytes(cfg) == 17_663 * 4
    assert measure(cfg, weights="int8").params == 17_663


def test_conv_bytes_counts_each_stored_tensor():
    # 3x3 conv 4 -> 8 with bias: 288 int8 weights, 8 x (scale 4 + zero point 1), 8 float32 biases, input 4 + 1
    assert conv_bytes(288, 8, bias=True) == 288 + 8 * 5 + 8 * 4 + 5
    assert conv_bytes(288, 8, bias=False) == 288 + 8 * 5 + 5


def test_unknown_weight_format_is_refused_by_name():
    with pytest.raises(ValueError, match="weights must be one of float32, int8, got 'int4'"):
        measure(Config(), weights="int4")


def test_uncalibrated_convolution_says_to_calibrate():
    conv = QuantConv2d(3, 4, 3)
    with pytest.raises(RuntimeError, match="calibrate it first"):
        conv(torch.rand(1, 3, 8, 8))


def test_weights_round_trip_through_int8_codes():
    torch.manual_seed(0)
    conv = QuantConv2d(3, 4, 3)
    codes = conv.quantized_weight().float()
    assert codes.abs().amax(dim=(1, 2, 3)).tolist() == [127.0] * 4  # each channel uses the full range
    rebuilt = codes * conv.weight_scale().reshape(-1, 1, 1, 1)
    assert torch.equal(rebuilt, conv.fake_quantized_weight())
    assert torch.equal(dequantized(torch.nn.Sequential(conv))[0].weight, rebuilt)


def test_zero_and_uint8_images_are_exact_inputs():
    conv = QuantConv2d(3, 1, 1, bias=False)
    conv.input_range.copy_(torch.tensor([0.0, 1.0]))
    scale, zero_point = conv.input_qparams()
    assert zero_point.item() == 0 and scale.item() == pytest.approx(1 / 255)
    images = torch.arange(256, dtype=torch.float32).div(255).reshape(1, 1, 16, 16).expand(1, 3, 16, 16)
    quantized = torch.fake_quantize_per_tensor_affine(images, scale, zero_point, 0, 255)
    assert torch.allclose(quantized, images, atol=1e-7)
