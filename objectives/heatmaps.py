"""Heatmap targets and the decoding of heatmaps back to sub-pixel keypoints.

Coordinates are pixel centres: keypoint (x, y) = (3, 5) peaks on heatmap pixel column 3, row 5. Decoding
uses only tensor ops (argmax, gather, arithmetic) so it exports inside an ONNX graph.
"""
from __future__ import annotations

import torch


def gaussian_targets(keypoints: torch.Tensor, height: int, width: int, sigma: float) -> torch.Tensor:
    """(N, K, 2) keypoints (x, y) -> (N, K, H, W) Gaussians with peak 1."""
    xs = torch.arange(width, dtype=keypoints.dtype, device=keypoints.device)
    ys = torch.arange(height, dtype=keypoints.dtype, device=keypoints.device)
    dx = (xs.view(1, 1, 1, width) - keypoints[..., 0, None, None]) ** 2  # (N, K, 1, W)
    dy = (ys.view(1, 1, height, 1) - keypoints[..., 1, None, None]) ** 2  # (N, K, H, 1)
    return torch.exp(-(dx + dy) / (2 * sigma**2))


def normalised(targets: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Each (H, W) map scaled to sum 1: the target distribution of a spatial softmax."""
    return targets / (targets.sum(dim=(-2, -1), keepdim=True) + eps)


def decode(heatmaps: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) -> (N, K, 2) keypoints (x, y): the argmax, refined by a parabola through its neighbours
    along each axis (shift clamped to half a pixel)."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    index = flat.argmax(dim=-1)  # (N, K)
    y = torch.div(index, w, rounding_mode="floor")
    x = index - y * w

    def at(dx: int, dy: int) -> torch.Tensor:
        xx = (x + dx).clamp(0, w - 1)
        yy = (y + dy).clamp(0, h - 1)
        return flat.gather(-1, (yy * w + xx).unsqueeze(-1)).squeeze(-1)

    centre = at(0, 0)
    # A peak on the border has one neighbour: no parabola, the argmax stands.
    inside_x = ((x > 0) & (x < w - 1)).to(heatmaps.dtype)
    inside_y = ((y > 0) & (y < h - 1)).to(heatmaps.dtype)
    x_shift = _parabola_shift(at(-1, 0), centre, at(1, 0)) * inside_x
    y_shift = _parabola_shift(at(0, -1), centre, at(0, 1)) * inside_y
    return torch.stack([x.to(heatmaps.dtype) + x_shift, y.to(heatmaps.dtype) + y_shift], dim=-1)


def _parabola_shift(left: torch.Tensor, centre: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    curvature = left - 2 * centre + right
    shift = 0.5 * (left - right) / torch.where(curvature.abs() > 1e-12, curvature, torch.full_like(curvature, -1e-12))
    return shift.clamp(-0.5, 0.5)


def decode_local(heatmaps: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """(N, K, H, W) -> (N, K, 2): the argmax, refined by the centre of mass of the (2r+1)^2 window around it.

    The argmax picks the peak (a second, weaker peak elsewhere cannot pull the point, as it would a global
    soft-argmax); the window's centre of mass is a finer sub-pixel estimate than a parabola along each axis.
    Pixels outside the image (and their mirror images) get no weight; negative values (linear heads) count as zero. Tensor ops only
    (exports to ONNX).
    """
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    index = flat.argmax(dim=-1)  # (N, K)
    y = torch.div(index, w, rounding_mode="floor")
    x = index - y * w
    side = 2 * radius + 1
    # Window offsets (M,), M = (2r+1)^2, row-major; made as floats and cast, which exports as plain constants.
    fdx = (torch.arange(side * side, device=heatmaps.device, dtype=heatmaps.dtype) % side) - radius
    fdy = torch.floor(torch.arange(side * side, device=heatmaps.device, dtype=heatmaps.dtype) / side) - radius
    dx, dy = fdx.long(), fdy.long()
    xx = x[..., None] + dx  # (N, K, M)
    yy = y[..., None] + dy
    # A pixel counts only if its mirror image about the peak is inside too: a window cut by the border stays
    # symmetric, so it does not pull the point inward.
    mirror_x, mirror_y = x[..., None] - dx, y[..., None] - dy
    inside = ((xx >= 0) & (xx < w) & (yy >= 0) & (yy < h) & (mirror_x >= 0) & (mirror_x < w)
              & (mirror_y >= 0) & (mirror_y < h)).to(heatmaps.dtype)
    values = flat.gather(-1, yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1))  # (N, K, M)
    weights = torch.relu(values) * inside
    # A window with no positive mass (a dead linear head) falls back to the argmax itself: 0 / tiny = 0.
    total = weights.sum(-1) + torch.finfo(heatmaps.dtype).tiny
    mean_dx = (weights * fdx).sum(-1) / total
    mean_dy = (weights * fdy).sum(-1) / total
    return torch.stack([x.to(heatmaps.dtype) + mean_dx, y.to(heatmaps.dtype) + mean_dy], dim=-1)


DECODERS = {"parabola": decode, "local": decode_local}


def inference_name(flip_test: bool, decoder: str) -> str:
    """How a model reads keypoints out, as recorded in metrics and ONNX metadata: ``parabola``, ``local``,
    ``flip+parabola`` or ``flip+local``."""
    return ("flip+" if flip_test else "") + decoder


def parse_inference(name: str) -> dict:
    """``inference_name``'s inverse: {"flip_test": ..., "decoder": ...}."""
    return {"flip_test": name.startswith("flip+"), "decoder": name.removeprefix("flip+")}


def flip_back(heatmaps: torch.Tensor, permutation: tuple[int, ...]) -> torch.Tensor:
    """Heatmaps predicted on mirrored crops, mirrored back: columns reversed (x -> W - 1 - x) and left and
    right keypoints swapped, so they line up with the heatmaps of the unmirrored crops."""
    return heatmaps.flip(-1)[:, list(permutation)]
