"""Whether the ONNX file says what the trained model says: ONNX Runtime's keypoints against torch's on the crops a
command checks (retrain, adapt, the int8 benchmark), and the line that reports it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deploy.exported import ExportedModel
from objectives.train import predict_keypoints


AGREEMENT_PX = 1e-3  # ONNX Runtime and torch keypoints must agree this closely
AGREEMENT_OFF_SHARE = 1e-3  # float32: keypoints that may be further apart (check_agreement says why)
INT8_AGREEMENT_PX = 0.05  # int8: the median keypoint and the mean error (check_agreement says why not every keypoint)


def check_agreement(model: torch.nn.Module, onnx_path: Path, val_set, flip_test: bool = False,
                    decoder: str = "parabola", weights: str = "float32") -> dict:
    """Keypoints of ONNX Runtime against torch (the unfolded trained model, or the fake-quantized one for int8) on
    every crop of ``val_set``. float32 agrees when the mean errors are within AGREEMENT_PX and at most one keypoint
    in a thousand (AGREEMENT_OFF_SHARE) is further apart than that: where two cells of a heatmap tie to the last
    bit, the runtimes' last-bit differences pick different peaks and that keypoint moves a pixel (seen: 1 of 4,564
    on tuwr, docs/int8.md); an export that is wrong moves most keypoints. int8 agrees when the median keypoint and
    the mean error are within INT8_AGREEMENT_PX (where the two runtimes' float sums differ in the last bit across a
    rounding boundary, an activation lands one int8 code away and moves the keypoints nearby)."""
    torch_keypoints = predict_keypoints(model, val_set.images, flip_test=flip_test, decoder=decoder).numpy()
    onnx_keypoints = ExportedModel(onnx_path).keypoints(val_set.images.numpy())
    distance = np.linalg.norm(onnx_keypoints.astype(np.float64) - torch_keypoints, axis=-1)  # (N, 7)
    truth = val_set.keypoints.numpy()
    onnx_mean = float(np.linalg.norm(onnx_keypoints - truth, axis=-1).mean())
    error_gap = abs(onnx_mean - float(np.linalg.norm(torch_keypoints - truth, axis=-1).mean()))
    return {**agreement_verdict(distance, error_gap, weights), "crops": len(val_set), "onnx_mean_px": onnx_mean}


def agreement_verdict(distance: np.ndarray, error_gap: float, weights: str = "float32") -> dict:
    """``distance``: every keypoint's distance between the runtimes (px); ``error_gap``: how far apart their mean
    errors are. The rule is check_agreement's."""
    tolerance = INT8_AGREEMENT_PX if weights == "int8" else AGREEMENT_PX
    median_px, max_px = float(np.median(distance)), float(distance.max())
    over = int((distance > tolerance).sum())
    if weights == "int8":
        agrees = median_px <= tolerance and error_gap <= tolerance
    else:
        agrees = over <= AGREEMENT_OFF_SHARE * distance.size and error_gap <= tolerance
    return {"max_px": max_px, "median_px": median_px, "mean_px": float(distance.mean()), "error_gap_px": error_gap,
            "agrees": agrees, "tolerance_px": tolerance, "weights": weights, "over": over,
            "keypoints": int(distance.size)}


def agreement_text(agreement: dict) -> str:
    tolerance = agreement.get("tolerance_px", AGREEMENT_PX)
    verdict = "agree" if agreement["agrees"] else "DISAGREE"
    if agreement.get("weights") == "int8":
        return (f"median {agreement['median_px']:.2g} px, mean {agreement['mean_px']:.2g} px, max "
                f"{agreement['max_px']:.2g} px, errors {agreement['error_gap_px']:.2g} px apart: {verdict} within "
                f"{tolerance} px (median and error)")
    over = agreement.get("over", 0)
    spread = f", {over} of {agreement['keypoints']:,} keypoints further" if over and "keypoints" in agreement else ""
    return f"max {agreement['max_px']:.2g} px{spread} ({verdict} within {tolerance} px)"
