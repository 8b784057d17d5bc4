"""Reading an exported model with ONNX Runtime alone: metadata, uint8 input, rejecting foreign files."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from cones.types import KEYPOINT_NAMES
from deploy.exported import ExportedModel, initializer_bytes
from deploy.onnx_export import export_onnx
from search_space.config import Config
from search_space.registry import create_model

CFG = Config(family="unet", width=4, depth=2)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("exported") / "model.onnx"
    export_onnx(create_model(CFG), CFG, path)
    return path


def test_metadata_gives_names_config_and_input_size(model_path):
    model = ExportedModel(model_path, threads=1)
    assert model.input_size == (48, 64)
    assert model.keypoint_names == KEYPOINT_NAMES
    assert Config.from_dict(model.config) == CFG
    assert int(model.metadata["weight_bytes"]) == initializer_bytes(model_path).weight_bytes


def test_uint8_crops_give_the_same_keypoints_as_scaled_floats(model_path):
    model = ExportedModel(model_path)
    images = np.random.default_rng(0).integers(0, 256, (3, 3, 64, 48), dtype=np.uint8)
    keypoints = model.keypoints(images, batch=2)
    assert keypoints.shape == (3, 7, 2)
    np.testing.assert_allclose(keypoints, model.run(images.astype(np.float32) / 255)[0])


def test_a_foreign_onnx_file_is_rejected_by_name(tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 48])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 64, 48])])
    # An IR version and opset ONNX Runtime loads (make_model's defaults follow onnx, which can be ahead of it), so
    # the file is refused for its names, not for being unloadable.
    onnx.save(helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "other.onnx")
    with pytest.raises(ValueError, match="expected input 'image'"):
        ExportedModel(tmp_path / "other.onnx")


def test_initializer_bytes_counts_only_net_weights_as_weights():
    weights = helper.make_tensor("net.head.conv.bias", TensorProto.FLOAT, [7], np.zeros(7).tolist())
    shape = helper.make_tensor("val_3", TensorProto.INT64, [2], [1, 2])
    graph = helper.make_graph([], "g", [], [], initializer=[weights, shape])
    counted = initializer_bytes(helper.make_model(graph))
    assert (counted.weight_bytes, counted.constant_bytes, counted.weight_names) == (28, 16, ("net.head.conv.bias",))


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="runners/retrain.py"):
        ExportedModel(tmp_path / "nope.onnx")
