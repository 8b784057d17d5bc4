"""Export a trained network to the ONNX file a team deploys (contract in ``deploy.exported``).

Batch norm is folded first (``fold_batch_norm``), heatmaps are decoded to keypoints inside the graph
(``objectives.heatmaps.decode``), and the batch dimension is dynamic.

Weights versus constants. The graph is exported with ``optimize=False``: onnxscript's optimizer would lift
decode's scalars into initializers and merge equal initializers (an untrained model's zero biases), so the
file's bytes would no longer be the size module's count. Unoptimised, every initializer is one state-dict
tensor of the folded network, named ``net.<key>``, and decode's constants stay ``Constant`` nodes; ONNX
Runtime folds them at session start. ``export_onnx`` checks that the ``net.*`` initializers are exactly the
folded state dict and that their bytes equal ``measure(cfg).weight_bytes``, and refuses a model over the cap
before anything is written.

int8 (``weights="int8"``): the fake-quantized network (``shipping.quantize``) is traced with its dequantized
weights and ``deploy.qdq.to_qdq`` stores them as int8 behind DequantizeLinear, with QuantizeLinear/
DequantizeLinear on every convolution's input; the ``net.*`` initializers are then exactly
``search_space.int8.stored_tensors`` and their bytes ``measure(cfg, weights="int8").weight_bytes``.
"""
from __future__ import annotations

import copy
import json
import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from cones.types import DEFAULT_SIZE, FLIP_PERMUTATION, KEYPOINT_NAMES
from deploy.atomic import replacing
from deploy.exported import INPUT_NAME, OUTPUT_NAMES, WEIGHT_PREFIX, initializer_bytes
from deploy.qdq import to_qdq
from objectives.heatmaps import DECODERS, flip_back, inference_name
from search_space.cap import over_cap, within
from search_space.config import Config
from search_space.int8 import dequantized, quantized_convs, stored_tensors
from search_space.registry import create_model
from search_space.size import fold_batch_norm, measure


class OversizeError(ValueError):
    """The model's weights are over the size cap: it must not ship."""


class Deployable(nn.Module):
    """image (N, 3, H, W) in [0, 1] -> keypoints (N, 7, 2) in input pixels, heatmaps (N, 7, H, W).

    flip_test: the heatmaps are the average of the crop's and its mirror image's (mirrored back), in the
    graph: the same weights run twice, so the weight bytes stay the same and the latency doubles.
    decoder: a name in ``objectives.heatmaps.DECODERS``.
    """

    def __init__(self, net: nn.Module, flip_test: bool = False, decoder: str = "parabola"):
        super().__init__()
        self.net = net  # the attribute name is WEIGHT_PREFIX: initializers are called net.<state-dict key>
        self.flip_test, self.decoder = flip_test, decoder
        self.decode = DECODERS[decoder]

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        heatmaps = self.net(image)  # (N, 7, H, W)
        if self.flip_test:
            heatmaps = 0.5 * (heatmaps + flip_back(self.net(image.flip(-1)), FLIP_PERMUTATION))
        return self.decode(heatmaps), heatmaps  # (N, 7, 2), (N, 7, H, W)


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    weight_bytes: int  # bytes of the weight initializers, == measure(cfg, weights=...).weight_bytes
    constant_bytes: int  # other initializers (0 with this exporter)
    params: int


def deployable(model: nn.Module, flip_test: bool = False, decoder: str = "parabola") -> Deployable:
    """The folded, eval-mode, contiguous copy of ``model`` wrapped with decoding: what the ONNX file holds."""
    net = fold_batch_norm(copy.deepcopy(model).cpu()).to(memory_format=torch.contiguous_format)
    return Deployable(net, flip_test, decoder).eval()


def export_onnx(model: nn.Module, cfg: Config, path: str | Path, *, max_bytes: int | None = None,
                size: tuple[int, int] = DEFAULT_SIZE, flip_test: bool = False,
                decoder: str = "parabola", weights: str = "float32") -> OnnxExport:
    """Write ``model`` (a trained ``create_model(cfg)``) to ``path`` as ONNX.

    max_bytes: the size cap; a model over it raises ``OversizeError`` and nothing is written.
    size: (width, height) of the input crops.
    flip_test, decoder: how the graph reads keypoints out of the heatmaps (see ``Deployable``).
    weights: "float32", or "int8" for a QDQ model (``deploy/qdq.py``); ``model`` must then be the fake-quantized,
        calibrated network ``shipping.quantize`` returns.
    """
    measured = measure(cfg, size, weights=weights)
    if max_bytes is not None and not within(measured.weight_bytes, max_bytes):
        raise OversizeError(_oversize_message(cfg, measured.weight_bytes, max_bytes, weights))
    wrapped, stored = _deployed(model, weights, flip_test, decoder)
    proto = _traced(wrapped, size)
    if weights == "int8":
        proto = to_qdq(proto, stored)
    counted = initializer_bytes(proto)
    if set(counted.weight_names) != set(stored):
        missing, extra = sorted(set(stored) - set(counted.weight_names)), sorted(set(counted.weight_names) - set(stored))
        raise RuntimeError(f"ONNX initializers do not match the deployed model's tensors (missing {missing[:5]}, "
                           f"unexpected {extra[:5]}): the exporter renamed or merged weights")
    if counted.weight_bytes != measured.weight_bytes:
        raise RuntimeError(f"ONNX weights are {counted.weight_bytes} bytes but search_space.size.measure counts "
                           f"{measured.weight_bytes} ({weights}) for {cfg}: the size module and the export disagree")
    width, height = size
    metadata = {
        "config": cfg.to_json(),
        "keypoint_names": json.dumps(list(KEYPOINT_NAMES)),
        "weight_bytes": str(counted.weight_bytes),
        "weights": weights,
        "input": f"{INPUT_NAME}: float32 [N, 3, {height}, {width}] RGB in [0, 1]",
        "keypoints": "(x, y) input pixels, pixel centres",
        "inference": inference_name(flip_test, decoder),
    }
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    _save(proto, Path(path))
    return OnnxExport(Path(path), counted.weight_bytes, counted.constant_bytes, measured.params)


def _deployed(model: nn.Module, weights: str, flip_test: bool, decoder: str) -> tuple[Deployable, dict]:
    """The module to trace and the tensors the file must store, by initializer name."""
    if weights == "int8":
        if not quantized_convs(model):
            raise ValueError("weights='int8' exports a fake-quantized, calibrated model: pass the model "
                             "shipping.quantize.quantize (or post_training) returns, not the float one")
        net = copy.deepcopy(model).cpu().eval()
        stored = {WEIGHT_PREFIX + key: array for key, array in stored_tensors(net).items()}
        plain = dequantized(net).to(memory_format=torch.contiguous_format)
        return Deployable(plain, flip_test, decoder).eval(), stored
    wrapped = deployable(model, flip_test, decoder)
    if buffers := [k for k, _ in wrapped.net.named_buffers()]:
        raise ValueError(f"the folded model still has buffers {buffers}; only ConvBN batch norms can be folded")
    return wrapped, {WEIGHT_PREFIX + key: value for key, value in wrapped.net.state_dict().items()}


def _traced(wrapped: Deployable, size: tuple[int, int]) -> onnx.ModelProto:
    width, height = size
    example = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(0))  # batch 2: an example batch of 1 would be specialised
    with _quiet_exporter():
        program = torch.onnx.export(
            wrapped, (example,), None, input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
            dynamic_shapes={"image": {0: torch.export.Dim("batch")}}, optimize=False, verbose=False,
        )
    return program.model_proto


def _save(proto: onnx.ModelProto, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:  # a failed or killed export never leaves a half-written model.onnx
        onnx.save(proto, str(tmp))


def export_untrained(cfg: Config, path: str | Path, *, seed: int = 0, max_bytes: int | None = None) -> OnnxExport:
    """``cfg`` with its initial weights: enough for latency, which does not depend on the weights."""
    torch.manual_seed(seed)
    return export_onnx(create_model(cfg), cfg, path, max_bytes=max_bytes)


def _oversize_message(cfg: Config, nbytes: int, cap: int, weights: str = "float32") -> str:
    return (f"model weights are {over_cap(nbytes, cap, weights)}, for {cfg}; refusing to write it. Pick a smaller "
            "trial "
            f"(runners/export.py --max-kb) or raise the cap with --max-kb if the target allows it")


@contextmanager
def _quiet_exporter():
    # The exporter logs a warning per missing torchvision op and prints its progress; neither helps a user.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)
