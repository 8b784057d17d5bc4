"""An exported keypoint model as ONNX Runtime runs it: no torch needed, so ``runners/predict.py`` and the
inference benchmark run on a machine that has only onnxruntime.

The contract of every model ``deploy.onnx_export`` writes:

    input   image      float32 [N, 3, H, W]  RGB scaled to [0, 1]   (H, W = 64, 48 for this project)
    output  keypoints  float32 [N, 7, 2]     (x, y) in input pixels, pixel centres, canonical order
    output  heatmaps   float32 [N, 7, H, W]  after the head activation

and metadata (``metadata_props``): ``config`` (the Config as JSON), ``keypoint_names`` (JSON list),
``weight_bytes`` (bytes of the weight initializers) and ``weights`` (their format: ``float32``, or ``int8`` for
a QDQ model, ``deploy/qdq.py``; files written before int8 existed have no key and are float32). An int8 model
keeps the same contract: float32 image in, float32 keypoints and heatmaps out.

Running an int8 model in ONNX Runtime: ``ExportedModel`` opens the session with ``session.disable_quant_qdq`` set to
"1", so ONNX Runtime runs the QDQ graph as written (QuantizeLinear, DequantizeLinear, a float32 Conv), which is what
the fake-quantized torch model computes. By default ONNX Runtime fuses DequantizeLinear -> Conv -> (Relu) ->
QuantizeLinear into QLinearConv (since 1.23 also with the float32 bias the file keeps, which it rounds to int32), and
on x86 CPUs without VNNI (AVX2, AVX-512 before VNNI) that kernel adds pairs of uint8 x int8 products in saturating
int16: 2 x 255 x 127 = 64,770 is over 32,767, so a bright crop against full-range weights ([-127, 127],
``search_space.int8``) comes out tens of codes wrong, and keypoints move by tens of pixels. A team running the file
in ONNX Runtime on such a CPU should set the same option. (``session.x64quantprecision`` "1", which keeps the
integer kernel but converts the weights to uint8, does not load a flip-test model: ONNX Runtime names the converted
weight after the original once per convolution reading it, and flip averaging reads every weight twice.) Float32
models have no quantized op, and the option changes nothing for them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

NUM_KEYPOINTS = 7  # cones.types.NUM_KEYPOINTS, kept here so that predict needs no torch

INPUT_NAME = "image"
OUTPUT_NAMES = ("keypoints", "heatmaps")
# Every initializer of an exported model is a weight of the wrapped network, named after its state-dict key
# under this prefix (``net.body.0.conv.weight``); decode's constants are Constant nodes, not initializers.
WEIGHT_PREFIX = "net."
# ONNX Runtime's session option that runs a QDQ graph as written, without fusing it into integer kernels (module
# docstring: on x86 without VNNI those saturate).
DISABLE_QDQ_FUSION = "session.disable_quant_qdq"


@dataclass(frozen=True)
class InitializerBytes:
    weight_bytes: int  # initializers named WEIGHT_PREFIX + a state-dict key: the network's weights
    constant_bytes: int  # any other initializer (shape vectors, scalars an exporter might lift)
    weight_names: tuple[str, ...]


def initializer_bytes(model: onnx.ModelProto | str | Path) -> InitializerBytes:
    """Bytes of an ONNX model's initializers, the network's weights apart from any other constant."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    weights, constants, names = 0, 0, []
    for init in model.graph.initializer:
        nbytes = onnx.numpy_helper.to_array(init).nbytes
        if init.name.startswith(WEIGHT_PREFIX):
            weights += nbytes
            names.append(init.name)
        else:
            constants += nbytes
    return InitializerBytes(weights, constants, tuple(names))


class ExportedModel:
    """An exported ``model.onnx`` in an ONNX Runtime session.

    threads: intra-op threads (1 for a latency figure that does not depend on the machine's core count);
    None lets ONNX Runtime choose.
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        if self.path.is_dir() and (self.path / "model.onnx").is_file():
            self.path = self.path / "model.onnx"  # the folder retrain wrote
        if not self.path.is_file():
            raise FileNotFoundError(f"no ONNX model at {self.path}; write one with runners/retrain.py")
        options = ort.SessionOptions()
        options.add_session_config_entry(DISABLE_QDQ_FUSION, "1")  # int8 as torch computes it (module docstring)
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own kinds for a file that is not ONNX
            hint = " (a torch checkpoint: pass the model.onnx beside it)" if self.path.suffix == ".pt" else ""
            raise ValueError(f"{self.path} is not an ONNX model ONNX Runtime can load{hint}; pass the model.onnx "
                             f"runners/retrain.py wrote ({str(error).splitlines()[0][:120]})") from None
        inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        if [i.name for i in inputs] != [INPUT_NAME] or tuple(outputs) != OUTPUT_NAMES:
            raise ValueError(f"{self.path}: expected input {INPUT_NAME!r} and outputs {OUTPUT_NAMES}, got "
                             f"{[i.name for i in inputs]} and {outputs}; is it a keypoint-nas export?")
        _, channels, height, width = inputs[0].shape
        if not (isinstance(height, int) and isinstance(width, int) and channels == 3):
            raise ValueError(f"{self.path}: input shape {inputs[0].shape}, need [N, 3, H, W] with fixed H, W")
        self.input_size = (width, height)  # (width, height) like ConeSet.size
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = meta
        self.config = json.loads(meta["config"]) if "config" in meta else None
        self.weights = meta.get("weights", "float32")
        keypoints_shape = self.session.get_outputs()[0].shape
        if len(keypoints_shape) != 3 or keypoints_shape[1:] != [NUM_KEYPOINTS, 2]:
            raise ValueError(f"{self.path}: output 'keypoints' has shape {keypoints_shape}, this product's contract "
                             f"is [N, {NUM_KEYPOINTS}, 2]; export the model with runners/retrain.py")
        keypoints = keypoints_shape[1]
        names = json.loads(meta["keypoint_names"]) if "keypoint_names" in meta else []
        self.keypoint_names = tuple(names) if len(names) == keypoints else tuple(f"k{i}" for i in range(keypoints))

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 (N, 3, H, W) in [0, 1] -> keypoints (N, 7, 2), heatmaps (N, 7, H, W)."""
        keypoints, heatmaps = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(images, np.float32)})
        return keypoints, heatmaps

    def keypoints(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        """uint8 (N, 3, H, W) RGB, as a ConeSet holds them -> (N, 7, 2) keypoints, in batches."""
        out = [self.run(images[i:i + batch].astype(np.float32) / 255)[0] for i in range(0, len(images), batch)]
        return np.concatenate(out) if out else np.zeros((0, len(self.keypoint_names), 2), np.float32)
