"""Training augmentation on a whole batch in torch: one affine warp per sample, then photometric jitter.

No per-image Python loop: the warp is one ``F.grid_sample``, colour one batched 3 x 3 matrix, blur one
depthwise convolution. Coordinates follow the pixel-centre convention: pixel i covers [i - 0.5, i + 0.5], so
pixel x is (2x + 1) / W - 1 in the normalised coordinates of ``F.affine_grid`` with align_corners=False, and
a horizontal flip maps x to W - 1 - x. Keypoints get the same matrix as the image, so a keypoint on a
pixel centre lands where that pixel's content lands.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cones.types import FLIP_PERMUTATION

# RGB -> YIQ (NTSC); hue is a rotation of the (I, Q) chroma plane.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)
_GREY = _RGB_TO_YIQ[0]  # luma weights


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; each random value is drawn per sample, uniformly in the stated range.

    ``scale`` is drawn log-uniformly; > 1 zooms in. Crops of a new team frame cones tighter or looser than
    the training teams, so scale is the geometric jitter that matters most.
    """

    brightness: float = 0.25  # gain in [1 - brightness, 1 + brightness]
    contrast: float = 0.25  # factor in [1 - contrast, 1 + contrast] about the image's mean grey
    saturation: float = 0.3  # factor in [1 - saturation, 1 + saturation]
    hue_deg: float = 10.0  # hue rotation in [-hue_deg, hue_deg] degrees
    blur_prob: float = 0.25  # chance of a gaussian blur
    blur_sigma: tuple[float, float] = (0.3, 1.0)  # its sigma in pixels
    noise_std: float = 0.02  # gaussian noise, std in [0, noise_std] (image range 0..1)
    scale: tuple[float, float] = (0.75, 1.25)  # zoom about the crop centre
    shift: float = 0.08  # translation up to this fraction of the width and of the height
    rotation_deg: float = 10.0  # rotation in [-rotation_deg, rotation_deg] degrees
    flip_prob: float = 0.5  # chance of a horizontal flip (left and right keypoints swap)
    aspect: float = 0.0  # width/height stretch in [1 / (1 + aspect), 1 + aspect], log-uniform (other crop generators)
    gamma: float = 0.0  # gamma in [1 / (1 + gamma), 1 + gamma], log-uniform (other cameras' tone curves)
    white_balance: float = 0.0  # per-channel gain in [1 - white_balance, 1 + white_balance]

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation", "white_balance"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"AugmentConfig.{name} must be in [0, 1), got {value}")
        for name in ("hue_deg", "noise_std", "shift", "rotation_deg", "aspect", "gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"AugmentConfig.{name} must be >= 0 (0 turns it off), got {getattr(self, name)}")
        for name in ("blur_prob", "flip_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"AugmentConfig.{name} must be a probability in [0, 1], got {getattr(self, name)}")
        for name in ("scale", "blur_sigma"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"AugmentConfig.{name} must be (low, high) with 0 < low <= high, got {(low, high)}")

    @classmethod
    def off(cls) -> "AugmentConfig":
        """No augmentation: ``augment`` returns its inputs unchanged."""
        return cls(brightness=0.0, contrast=0.0, saturation=0.0, hue_deg=0.0, blur_prob=0.0, noise_std=0.0,
                   scale=(1.0, 1.0), shift=0.0, rotation_deg=0.0, flip_prob=0.0, aspect=0.0, gamma=0.0,
                   white_balance=0.0)

    @classmethod
    def framing(cls) -> "AugmentConfig":
        """Today's augmentation widened to imitate other crop generators and cameras: cones framed tighter
        (new teams' keypoints span up to 28 x 55 px against 20-24 x 44-48 px in the shared set) and looser,
        stretched, further off centre, and other tone curves and white balances."""
        return cls(scale=(0.75, 1.45), shift=0.1, aspect=0.15, gamma=0.3, white_balance=0.1, blur_prob=0.35,
                   blur_sigma=(0.3, 1.3))

    @property
    def geometric(self) -> bool:
        return (self.scale != (1.0, 1.0) or self.shift > 0 or self.rotation_deg > 0 or self.flip_prob > 0
                or self.aspect > 0)

    @property
    def colour(self) -> bool:
        return (self.brightness > 0 or self.contrast > 0 or self.saturation > 0 or self.hue_deg > 0
                or self.white_balance > 0)


def augment(images: torch.Tensor, keypoints: torch.Tensor, cfg: AugmentConfig,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch: images (N, 3, H, W) float in [0, 1], keypoints (N, 7, 2) (x, y) pixels.

    Returns new tensors (the inputs themselves when ``cfg`` turns everything off); images keep the input's
    memory format (channels_last or not) and stay in [0, 1]. Keypoints may end up outside the image.
    Deterministic given the generator's state.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got shape {tuple(images.shape)}")
    if keypoints.shape != (images.shape[0], len(FLIP_PERMUTATION), 2):
        raise ValueError(f"keypoints must be ({images.shape[0]}, {len(FLIP_PERMUTATION)}, 2), "
                         f"got shape {tuple(keypoints.shape)}")
    channels_last = images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous()
    out, points = images, keypoints
    if cfg.geometric:
        out, points = _warp(out, points, cfg, generator)
    if cfg.colour:
        out = _colour(out, cfg, generator)
    if cfg.gamma > 0:
        log_gamma = math.log(1 + cfg.gamma)
        gamma = _uniform(generator, out.shape[0], -log_gamma, log_gamma, out.device).exp()
        out = out.clamp(0.0, 1.0).pow(gamma[:, None, None, None])
    if cfg.blur_prob > 0:
        out = _blur(out, cfg, generator)
    if cfg.noise_std > 0:
        std = _uniform(generator, out.shape[0], 0.0, cfg.noise_std, out.device)
        noise = torch.randn(out.shape, generator=generator, device=generator.device).to(out.device)
        out = out + noise * std[:, None, None, None]
    if out is not images:
        out = out.clamp_(0.0, 1.0)
        if channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
    return out, points


def _uniform(generator: torch.Generator, n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
    return (low + (high - low) * torch.rand(n, generator=generator, device=generator.device)).to(device)


def _warp(images: torch.Tensor, keypoints: torch.Tensor, cfg: AugmentConfig,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One random affine per sample (scale, rotation, flip about the centre, shift) on images and keypoints."""
    n, _, height, width = images.shape
    device = images.device
    log_low, log_high = math.log(cfg.scale[0]), math.log(cfg.scale[1])
    scale = _uniform(generator, n, log_low, log_high, device).exp()
    # Aspect stretch: x scaled by sqrt(r), y by 1 / sqrt(r) (the area stays that of ``scale``).
    log_aspect = math.log(1 + cfg.aspect)
    stretch = (0.5 * _uniform(generator, n, -log_aspect, log_aspect, device)).exp() if cfg.aspect > 0 else None
    angle = _uniform(generator, n, -cfg.rotation_deg, cfg.rotation_deg, device).deg2rad()
    flipped = _uniform(generator, n, 0.0, 1.0, device) < cfg.flip_prob
    shift = torch.stack([_uniform(generator, n, -cfg.shift, cfg.shift, device) * width,
                         _uniform(generator, n, -cfg.shift, cfg.shift, device) * height], dim=1)  # (N, 2) px

    # Forward map in pixels: p_out = A (p_in - c) + c + shift, with A = R(angle) diag(+-sx, sy).
    cos, sin = angle.cos(), angle.sin()
    mirror = torch.where(flipped, -1.0, 1.0)
    sx, sy = (scale, scale) if stretch is None else (scale * stretch, scale / stretch)
    a = torch.stack([torch.stack([cos * sx * mirror, -sin * sy], -1),
                     torch.stack([sin * sx * mirror, cos * sy], -1)], -2)  # (N, 2, 2)
    centre = torch.tensor([(width - 1) / 2.0, (height - 1) / 2.0], device=device)
    points = keypoints.float()
    points = (points - centre) @ a.transpose(1, 2) + centre + shift[:, None, :]
    points = torch.where(flipped[:, None, None], points[:, list(FLIP_PERMUTATION)], points)

    # affine_grid wants the inverse map in normalised coordinates; pixel p = D u + c with D = diag(W/2, H/2),
    # so u_in = D^-1 A^-1 D u_out - D^-1 A^-1 shift.
    a_inv = torch.linalg.inv(a)
    d = torch.tensor([width / 2.0, height / 2.0], device=device)
    linear = a_inv * d[None, None, :] / d[None, :, None]  # D^-1 A^-1 D
    offset = -(a_inv @ shift[:, :, None])[:, :, 0] / d
    # The grid F.affine_grid(theta, align_corners=False) would give, built by broadcasting (3x faster on CPU).
    u = (torch.arange(width, device=device, dtype=images.dtype) * 2 + 1) / width - 1  # (W,) pixel centres
    v = ((torch.arange(height, device=device, dtype=images.dtype) * 2 + 1) / height - 1)[:, None]  # (H, 1)
    t = torch.cat([linear, offset[:, :, None]], dim=2)[:, :, :, None, None]  # theta (N, 2, 3, 1, 1)
    grid = torch.stack([t[:, 0, 0] * u + t[:, 0, 1] * v + t[:, 0, 2],
                        t[:, 1, 0] * u + t[:, 1, 1] * v + t[:, 1, 2]], dim=-1)  # (N, H, W, 2)
    # Border padding: zoomed-out crops continue the ground at their edges rather than a black frame.
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return warped, points


def _colour(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Brightness, saturation, hue and contrast as one 3 x 3 matrix and offset per sample."""
    n, c, height, width = images.shape
    device = images.device
    gain = _uniform(generator, n, 1 - cfg.brightness, 1 + cfg.brightness, device)
    saturation = _uniform(generator, n, 1 - cfg.saturation, 1 + cfg.saturation, device)
    hue = _uniform(generator, n, -cfg.hue_deg, cfg.hue_deg, device).deg2rad()
    contrast = _uniform(generator, n, 1 - cfg.contrast, 1 + cfg.contrast, device)

    cos, sin = hue.cos() * saturation, hue.sin() * saturation
    ones, zeros = torch.ones_like(cos), torch.zeros_like(cos)
    chroma = torch.stack([torch.stack([ones, zeros, zeros], -1),
                          torch.stack([zeros, cos, -sin], -1),
                          torch.stack([zeros, sin, cos], -1)], -2)  # (N, 3, 3) in YIQ
    matrix = _YIQ_TO_RGB.to(device) @ chroma @ _RGB_TO_YIQ.to(device) * gain[:, None, None]  # (N, 3, 3) RGB
    if cfg.white_balance > 0:  # per-channel gains after the colour matrix (drawn only when on: same stream)
        balance = 1 + cfg.white_balance * (2 * torch.rand(n, 3, generator=generator, device=generator.device) - 1)
        matrix = balance.to(device)[:, :, None] * matrix
    flat = images.reshape(n, c, height * width)  # (N, 3, HW)
    # Contrast about the mean grey of the colour-adjusted image: x' = k M x + (1 - k) mean_grey(M x).
    mean_grey = (_GREY.to(device) @ matrix @ flat.mean(dim=2)[:, :, None])[:, 0, 0]  # (N,)
    out = torch.baddbmm(((1 - contrast) * mean_grey)[:, None, None].expand(n, c, 1), matrix * contrast[:, None, None],
                        flat)
    return out.reshape(n, c, height, width)


def _blur(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Separable gaussian blur with its own sigma on a random subset of the batch (depthwise convolution)."""
    n = images.shape[0]
    device = images.device
    picked = _uniform(generator, n, 0.0, 1.0, device) < cfg.blur_prob
    sigma = _uniform(generator, n, cfg.blur_sigma[0], cfg.blur_sigma[1], device)
    index = picked.nonzero()[:, 0]
    if len(index) == 0:
        return images
    radius = max(1, math.ceil(2 * cfg.blur_sigma[1]))
    taps = torch.arange(-radius, radius + 1, device=device, dtype=images.dtype)
    kernel = torch.exp(-0.5 * (taps[None, :] / sigma[index, None]) ** 2)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(3, dim=0)  # (M*3, K)
    _, c, height, width = images.shape
    x = images[index].reshape(1, len(index) * c, height, width)
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel[:, None, None, :], groups=len(index) * c)  # along x
    x = F.conv2d(x, kernel[:, None, :, None], groups=len(index) * c)  # along y
    out = images.clone()
    out[index] = x.reshape(len(index), c, height, width)
    return out
