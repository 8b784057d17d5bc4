"""The int8 ONNX model: the product's contract, int8 weights behind DequantizeLinear, initializer bytes equal to
measure(cfg, weights="int8") for every family, ONNX Runtime equal to the fake-quantized torch model."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from cones.augment import AugmentConfig
from cones.synthetic import make_synthetic
from deploy.exported import ExportedModel, initializer_bytes
from deploy.onnx_export import OversizeError, export_onnx
from objectives.train import predict_heatmaps, predict_keypoints, train
from search_space.cap import max_bytes
from search_space.config import Config
from search_space.int8 import quantized_convs
from search_space.registry import create_model, families, get_family
from search_space.size import measure
from shipping.quantize import calibrate, post_training, prepare
from tests.deploy.test_onnx_export import _dims, trained_like

CFG = Config(family="unet", width=6, depth=3, batch_norm=True, head="softmax", loss="ce", batch_size=16, lr=3e-3)
AGREEMENT_PX = 0.05


@pytest.fixture(scope="module")
def crops():
    return make_synthetic(160, seed=4)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, crops):
    """A briefly trained model, quantized after training and exported as int8."""
    trained = train(CFG, crops, crops, 10, seed=0, augmentation=AugmentConfig.off(), threads=1).model
    quantized = post_training(trained, CFG, crops)
    path = tmp_path_factory.mktemp("int8") / "model.onnx"
    return quantized, path, export_onnx(quantized, CFG, path, max_bytes=max_bytes(80), weights="int8")


def test_contract_names_shapes_dtypes_and_dynamic_batch(exported):
    _, path, _ = exported
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["image"] and [o.name for o in graph.output] == ["keypoints", "heatmaps"]
    batch = _dims(graph.input[0])[0]
    assert isinstance(batch, str) and _dims(graph.input[0]) == [batch, 3, 64, 48]
    assert _dims(graph.output[0]) == [batch, 7, 2]
    for value in [*graph.input, *graph.output]:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    keypoints, heatmaps = ort.InferenceSession(str(path)).run(None, {"image": np.random.rand(5, 3, 64, 48).astype(np.float32)})
    assert keypoints.shape == (5, 7, 2) and heatmaps.shape == (5, 7, 64, 48)


def test_weights_are_int8_behind_dequantize_linear(exported):
    _, path, _ = exported
    graph = onnx.load(str(path)).graph
    types = {init.name: init.data_type for init in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    producers = {out: node.op_type for node in graph.node for out in node.output}
    for conv in convs:
        assert producers[conv.input[0]] == producers[conv.input[1]] == "DequantizeLinear"
    weights = [name for name in types if name.endswith(".weight")]
    assert len(weights) == len(convs) and {types[name] for name in weights} == {onnx.TensorProto.INT8}


def test_initializer_bytes_equal_the_int8_measure(exported):
    _, path, report = exported
    counted = initializer_bytes(path)
    assert counted.weight_bytes == report.weight_bytes == measure(CFG, weights="int8").weight_bytes
    assert counted.constant_bytes == 0
    assert report.params == measure(CFG).params


@pytest.mark.parametrize("family", families())
def test_int8_initializers_equal_measure_for_every_family(tmp_path, family, crops):
    cfg = Config(family=family, width=4, depth=get_family(family).depths[0], batch_norm=True)
    report = export_onnx(post_training(trained_like(cfg), cfg, crops, crops=32), cfg, tmp_path / "m.onnx",
                         weights="int8")
    assert initializer_bytes(tmp_path / "m.onnx").weight_bytes == report.weight_bytes == \
        measure(cfg, weights="int8").weight_bytes


def assert_agrees(torch_keypoints: np.ndarray, onnx_keypoints: np.ndarray, truth: np.ndarray) -> None:
    """Not to 1e-3 px as in float: where the two runtimes' float sums differ in the last bit across a rounding
    boundary, an activation lands one int8 code away, and a briefly trained model's flat heatmaps amplify it. Most
    keypoints and the error itself agree to AGREEMENT_PX."""
    distance = np.linalg.norm(onnx_keypoints - torch_keypoints, axis=-1)
    assert np.median(distance) < AGREEMENT_PX
    errors = [np.linalg.norm(k - truth, axis=-1).mean() for k in (torch_keypoints, onnx_keypoints)]
    assert abs(errors[0] - errors[1]) < AGREEMENT_PX


def test_onnx_runtime_agrees_with_the_fake_quantized_torch_model(exported, crops):
    quantized, path, _ = exported
    assert_agrees(predict_keypoints(quantized, crops.images).numpy(), ExportedModel(path).keypoints(crops.images.numpy()),
                  crops.keypoints.numpy())


def test_exported_model_reads_the_weight_format(exported):
    _, path, report = exported
    model = ExportedModel(path, threads=1)
    assert model.weights == "int8" and int(model.metadata["weight_bytes"]) == report.weight_bytes


def test_a_float_model_is_refused_for_int8(tmp_path):
    with pytest.raises(ValueError, match="fake-quantized, calibrated model"):
        export_onnx(create_model(CFG), CFG, tmp_path / "m.onnx", weights="int8")
    assert list(tmp_path.iterdir()) == []


def test_the_cap_counts_int8_bytes(tmp_path, crops):
    cfg = Config(family="resnet", width=16, depth=3)  # 1.2 MB in float32, 303 KB in int8
    quantized = post_training(create_model(cfg), cfg, crops, crops=8)
    assert measure(cfg, weights="int8").weight_bytes > max_bytes(80)
    with pytest.raises(OversizeError, match="bytes of int8 weights .*, over the cap of 81920 bytes"):
        export_onnx(quantized, cfg, tmp_path / "big.onnx", max_bytes=max_bytes(80), weights="int8")
    assert list(tmp_path.iterdir()) == []


def test_flip_averaging_quantizes_both_passes(tmp_path, exported, crops):
    quantized, _, _ = exported
    report = export_onnx(quantized, CFG, tmp_path / "flip.onnx", weights="int8", flip_test=True, decoder="local")
    assert report.weight_bytes == measure(CFG, weights="int8").weight_bytes
    assert_agrees(predict_keypoints(quantized, crops.images, flip_test=True, decoder="local").numpy(),
                  ExportedModel(tmp_path / "flip.onnx").keypoints(crops.images.numpy()), crops.keypoints.numpy())


def test_full_range_weights_on_a_white_crop_do_not_saturate(tmp_path, crops):
    """Every weight code of the first convolution 127 against a white crop (input code 255): ONNX Runtime's fused
    QLinearConv on x86 without VNNI adds pairs of uint8 x int8 products in int16 (2 x 255 x 127 = 64,770 > 32,767)
    unless the session keeps the graph unfused (deploy/exported.py); the heatmaps then come out 0.03 apart, not 0."""
    cfg = Config(family="unet", width=4, depth=2)
    torch.manual_seed(0)
    model = create_model(cfg).eval()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        first.weight.fill_(0.05)
    white = torch.full((4, *crops.images.shape[1:]), 255, dtype=torch.uint8)
    quantized = calibrate(prepare(model), torch.cat([crops.images[:16], white]))
    assert set(next(iter(quantized_convs(quantized).values())).quantized_weight().unique().tolist()) == {127}
    export_onnx(quantized, cfg, tmp_path / "white.onnx", weights="int8")
    np.testing.assert_allclose(ExportedModel(tmp_path / "white.onnx").run(white.numpy().astype(np.float32) / 255)[1],
                               predict_heatmaps(quantized, white).numpy(), atol=1e-3)
