"""Turn the float ONNX export of a fake-quantized network into the int8 QDQ model a team deploys.

``deploy.onnx_export`` traces the network with each convolution holding its dequantized weights (the exact
values int8 codes times scales give), so the graph has one ``Conv`` per convolution with its weight and bias as
initializers ``net.<module>.weight`` and ``net.<module>.bias``. ``to_qdq`` then, for each ``Conv``:

    x -> QuantizeLinear(input_scale, input_zero_point) -> DequantizeLinear -> Conv
    weight (int8) -> DequantizeLinear(weight_scale, weight_zero_point, axis 0) ----^   (bias stays float32)

and replaces the initializers by exactly the tensors ``search_space.int8.stored_tensors`` lists (named
``net.<key>``). ONNX Runtime runs the result; the torch model computes the same thing with
``fake_quantize_per_tensor_affine`` and ``fake_quantize_per_channel_affine``.

Why not let ``torch.onnx.export`` translate the fake quantization itself: it keeps the float32 weight in the file
(``weight -> QuantizeLinear -> DequantizeLinear``), stores the zero points as int32 and refuses the symmetric
[-127, 127] range, so the file would be neither int8 nor the bytes the size module counts.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from deploy.exported import WEIGHT_PREFIX

QDQ_OPSET = 13  # per-axis DequantizeLinear


def to_qdq(proto: onnx.ModelProto, stored: dict[str, np.ndarray]) -> onnx.ModelProto:
    """``proto`` (a float export whose initializers are ``net.<state-dict key>``) with every Conv quantized as
    above and its initializers replaced by ``stored`` (``net.<key>`` -> array, in the dtype stored)."""
    graph = proto.graph
    nodes = []
    for index, node in enumerate(graph.node):
        if node.op_type == "Conv":
            nodes.extend(_quantized_inputs(node, index, stored))
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [init for init in graph.initializer if not init.name.startswith(WEIGHT_PREFIX)]
    del graph.initializer[:]
    graph.initializer.extend(kept + [numpy_helper.from_array(array, name) for name, array in stored.items()])
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version < QDQ_OPSET:
            opset.version = QDQ_OPSET
    return proto


def _quantized_inputs(conv: onnx.NodeProto, index: int, stored: dict[str, np.ndarray]) -> list[onnx.NodeProto]:
    """The Q/DQ nodes that feed ``conv`` (rewired in place to read them); the index keeps the names of a
    convolution traced twice (flip averaging) apart."""
    weight = conv.input[1]
    module = weight.removesuffix("weight")  # "net.body.0.conv."
    if not (weight.startswith(WEIGHT_PREFIX) and weight.endswith("weight") and module + "input_scale" in stored):
        raise ValueError(f"Conv node {conv.name!r} reads {weight!r}, not a quantized convolution's weight")
    scale, zero_point = module + "input_scale", module + "input_zero_point"
    quantized, image, kernel = (f"{module}q{index}", f"{module}dq{index}", f"{module}weight_dq{index}")
    nodes = [
        helper.make_node("QuantizeLinear", [conv.input[0], scale, zero_point], [quantized], name=quantized),
        helper.make_node("DequantizeLinear", [quantized, scale, zero_point], [image], name=image),
        helper.make_node("DequantizeLinear", [weight, module + "weight_scale", module + "weight_zero_point"],
                         [kernel], name=kernel, axis=0),
    ]
    conv.input[0], conv.input[1] = image, kernel
    return nodes
