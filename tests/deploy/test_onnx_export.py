"""The ONNX contract: names, shapes, dtypes, dynamic batch, keypoints equal to torch's, exact weight bytes, cap."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from deploy.exported import initializer_bytes
from deploy.onnx_export import OversizeError, export_onnx
from objectives.heatmaps import DECODERS, decode
from objectives.train import predict_heatmaps
from search_space.cap import max_bytes
from search_space.config import Config
from search_space.registry import create_model, families
from search_space.size import measure

CFG = Config(family="mobile", width=8, depth=3, batch_norm=True, head="sigmoid")


def trained_like(cfg: Config, seed: int = 0) -> torch.nn.Module:
    """``create_model(cfg)`` with non-trivial batch-norm statistics, so folding changes every weight."""
    torch.manual_seed(seed)
    model = create_model(cfg)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = trained_like(CFG).to(memory_format=torch.channels_last)  # as train() leaves it
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return model, path, export_onnx(model, CFG, path, max_bytes=max_bytes(80))


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_names_shapes_and_dtypes(exported):
    _, path, _ = exported
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["image"]
    assert [o.name for o in graph.output] == ["keypoints", "heatmaps"]
    for value in [*graph.input, *graph.output]:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    batch = _dims(graph.input[0])[0]
    assert isinstance(batch, str)  # a symbolic, dynamic batch dimension
    assert _dims(graph.input[0]) == [batch, 3, 64, 48]
    assert _dims(graph.output[0]) == [batch, 7, 2]
    assert _dims(graph.output[1]) == [batch, 7, 64, 48]


@pytest.mark.parametrize("batch", [1, 5])
def test_dynamic_batch_matches_torch_within_a_thousandth_pixel(exported, batch):
    model, path, _ = exported
    images = torch.rand(batch, 3, 64, 48, generator=torch.Generator().manual_seed(batch))
    keypoints, heatmaps = ort.InferenceSession(str(path)).run(None, {"image": images.numpy()})
    with torch.no_grad():
        torch_heatmaps = model(images)
    assert keypoints.shape == (batch, 7, 2) and keypoints.dtype == np.float32
    assert heatmaps.shape == (batch, 7, 64, 48)
    assert np.linalg.norm(keypoints - decode(torch_heatmaps).numpy(), axis=-1).max() < 1e-3
    np.testing.assert_allclose(heatmaps, torch_heatmaps.numpy(), atol=1e-4)


def test_export_reports_the_size_modules_exact_bytes(exported):
    _, path, report = exported
    counted = initializer_bytes(path)
    assert counted.weight_bytes == report.weight_bytes == measure(CFG).weight_bytes
    assert counted.constant_bytes == 0  # decode's constants are Constant nodes, not initializers


@pytest.mark.parametrize("family", families())
def test_weight_initializers_equal_measure_for_every_family(tmp_path, family):
    cfg = Config(family=family, width=4, depth=2, batch_norm=True)
    report = export_onnx(trained_like(cfg), cfg, tmp_path / "m.onnx")
    assert initializer_bytes(tmp_path / "m.onnx").weight_bytes == report.weight_bytes == measure(cfg).weight_bytes


def test_untrained_zero_biases_are_not_merged(tmp_path):
    # Fresh batch norms fold to all-zero biases of equal shapes; an optimising exporter would store them once.
    cfg = Config(family="unet", width=4, depth=3, batch_norm=True)
    export_onnx(create_model(cfg), cfg, tmp_path / "m.onnx")
    assert initializer_bytes(tmp_path / "m.onnx").weight_bytes == measure(cfg).weight_bytes


def test_oversize_model_is_refused_and_nothing_written(tmp_path):
    cfg = Config(family="resnet", width=16, depth=3)
    assert measure(cfg).weight_bytes > max_bytes(80)
    with pytest.raises(OversizeError, match="over the cap of 81920 bytes"):
        export_onnx(create_model(cfg), cfg, tmp_path / "big.onnx", max_bytes=max_bytes(80))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("decoder", ["parabola", "local"])
def test_flip_averaged_onnx_equals_torchs_average(tmp_path, decoder):
    """The export option: the graph averages the crop's heatmaps with its mirror's, as predict_heatmaps(flip=True)
    does in torch, with the same weight bytes."""
    cfg = Config(family="unet", width=4, depth=2, batch_norm=True, head="softmax", loss="ce")
    model = trained_like(cfg)
    report = export_onnx(model, cfg, tmp_path / "flip.onnx", flip_test=True, decoder=decoder)
    assert report.weight_bytes == measure(cfg).weight_bytes
    images = (torch.rand(6, 3, 64, 48, generator=torch.Generator().manual_seed(3)) * 255).to(torch.uint8)
    keypoints, heatmaps = ort.InferenceSession(str(tmp_path / "flip.onnx")).run(
        None, {"image": images.float().div(255).numpy()})
    averaged = predict_heatmaps(model, images, torch.contiguous_format, flip=True)
    plain = predict_heatmaps(model, images, torch.contiguous_format)
    assert not torch.allclose(averaged, plain, rtol=1e-2, atol=0)  # the mirror changes the maps
    np.testing.assert_allclose(heatmaps, averaged.numpy(), rtol=1e-4, atol=1e-7)
    assert np.linalg.norm(keypoints - DECODERS[decoder](averaged).numpy(), axis=-1).max() < 1e-3
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "flip.onnx")).metadata_props}
    assert meta["inference"] == f"flip+{decoder}"
