"""cones.augment: keypoints follow the image content, flips swap sides, off() is the identity."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from cones.augment import AugmentConfig, augment
from cones.types import FLIP_PERMUTATION

HEIGHT, WIDTH = 64, 48
# A real-looking cone (canonical order), on pixel centres and at least 8 px apart.
CONE = torch.tensor([[33, 50], [29, 36], [28, 21], [24, 4], [19, 21], [17, 36], [13, 50]], dtype=torch.float32)
GEOMETRY_ONLY = dataclasses.replace(AugmentConfig.off(), scale=(0.75, 1.25), shift=0.08, rotation_deg=10.0,
                                    flip_prob=0.5)


def _dots(n: int, points: torch.Tensor) -> torch.Tensor:
    """(n, 3, H, W) black images with one white pixel at each of ``points`` (k, 2)."""
    images = torch.zeros(n, 3, HEIGHT, WIDTH)
    for x, y in points.long().tolist():
        images[:, :, y, x] = 1.0
    return images


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_off_is_identity():
    images = torch.rand(4, 3, HEIGHT, WIDTH)
    keypoints = CONE.expand(4, 7, 2).clone()
    out, points = augment(images, keypoints, AugmentConfig.off(), _generator())
    assert torch.equal(out, images)
    assert torch.equal(points, keypoints)


def test_flip_swaps_left_and_right():
    cfg = dataclasses.replace(AugmentConfig.off(), flip_prob=1.0)
    images = _dots(2, CONE[:1])  # a dot on base_right only
    out, points = augment(images, CONE.expand(2, 7, 2).clone(), cfg, _generator())
    swapped = FLIP_PERMUTATION[0]  # base_right becomes base_left
    assert swapped == 6
    x, y = points[0, swapped].tolist()
    assert (x, y) == (WIDTH - 1 - CONE[0, 0].item(), CONE[0, 1].item())
    assert out[0, 0, int(y), int(x)] == 1.0 and out[0].sum() == 3.0  # the dot, moved exactly, in 3 channels
    assert (points[0, :3, 0] > points[0, 4:, 0].flip(0)).all()  # still canonical: right flank has the larger x
    assert torch.equal(points[0, 3], torch.tensor([WIDTH - 1 - CONE[3, 0].item(), CONE[3, 1].item()]))


def test_geometry_moves_content_where_the_keypoints_go():
    n = 32
    out, points = augment(_dots(n, CONE), CONE.expand(n, 7, 2).clone(), GEOMETRY_ONLY, _generator(1))
    checked = 0
    for i in range(n):
        for x, y in points[i].tolist():
            col, row = round(x), round(y)
            if not (3 <= col < WIDTH - 3 and 3 <= row < HEIGHT - 3):
                continue  # pushed out of (or onto the edge of) the crop
            window = out[i, 0, row - 3:row + 4, col - 3:col + 4]
            dy, dx = divmod(window.argmax().item(), 7)
            assert ((col - 3 + dx - x) ** 2 + (row - 3 + dy - y) ** 2) ** 0.5 <= 1.0
            checked += 1
    assert checked > n * 5


def test_geometry_has_no_half_pixel_bias():
    # The brightness-weighted centre of each warped dot sits on its keypoint, not half a pixel off.
    n = 32
    out, points = augment(_dots(n, CONE), CONE.expand(n, 7, 2).clone(), GEOMETRY_ONLY, _generator(2))
    errors = []
    rows, cols = torch.meshgrid(torch.arange(-3.0, 4.0), torch.arange(-3.0, 4.0), indexing="ij")
    for i in range(n):
        for x, y in points[i].tolist():
            col, row = round(x), round(y)
            if 3 <= col < WIDTH - 3 and 3 <= row < HEIGHT - 3:
                window = out[i, 0, row - 3:row + 4, col - 3:col + 4]
                centre = torch.stack([(window * (cols + col)).sum(), (window * (rows + row)).sum()]) / window.sum()
                errors.append(centre - torch.tensor([x, y]))
    errors = torch.stack(errors)
    assert errors.abs().mean(dim=0).max() < 0.15
    assert errors.mean(dim=0).abs().max() < 0.05


def test_deterministic_given_the_generator_seed():
    images, keypoints = torch.rand(8, 3, HEIGHT, WIDTH), CONE.expand(8, 7, 2).clone()
    first = augment(images, keypoints, AugmentConfig(), _generator(5))
    second = augment(images, keypoints, AugmentConfig(), _generator(5))
    other = augment(images, keypoints, AugmentConfig(), _generator(6))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])


def test_output_in_unit_range_and_finite():
    images = torch.rand(16, 3, HEIGHT, WIDTH)
    cfg = dataclasses.replace(AugmentConfig(), blur_prob=1.0, brightness=0.9, contrast=0.9, noise_std=0.2)
    out, points = augment(images, CONE.expand(16, 7, 2).clone(), cfg, _generator())
    assert out.shape == images.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    assert points.shape == (16, 7, 2) and torch.isfinite(points).all()


def test_keeps_channels_last():
    images = torch.rand(4, 3, HEIGHT, WIDTH).contiguous(memory_format=torch.channels_last)
    out, _ = augment(images, CONE.expand(4, 7, 2).clone(), AugmentConfig(), _generator())
    assert out.is_contiguous(memory_format=torch.channels_last)
    plain, _ = augment(images.contiguous(), CONE.expand(4, 7, 2).clone(), AugmentConfig(), _generator())
    assert plain.is_contiguous()
    assert torch.allclose(out, plain, atol=1e-6)


def test_photometric_only_leaves_keypoints_alone():
    cfg = dataclasses.replace(AugmentConfig(), scale=(1.0, 1.0), shift=0.0, rotation_deg=0.0, flip_prob=0.0)
    keypoints = CONE.expand(4, 7, 2).clone()
    _, points = augment(torch.rand(4, 3, HEIGHT, WIDTH), keypoints, cfg, _generator())
    assert torch.equal(points, keypoints)


def test_grey_stays_grey_under_hue_and_saturation():
    cfg = dataclasses.replace(AugmentConfig.off(), saturation=0.5, hue_deg=30.0)
    out, _ = augment(torch.full((4, 3, 8, 8), 0.4), torch.zeros(4, 7, 2), cfg, _generator())
    assert torch.allclose(out, torch.full_like(out, 0.4), atol=1e-5)


@pytest.mark.parametrize("field, value", [("scale", (1.2, 0.8)), ("flip_prob", 1.5), ("brightness", -0.1),
                                          ("blur_sigma", (0.0, 1.0))])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})


def test_framing_augmentation_keeps_keypoints_on_the_cone():
    """Each keypoint's white dot lands where the warped keypoint says, under the widened framing jitter
    (zoom 0.75-1.45, aspect stretch, shift, rotation, flip), for many random draws."""
    cfg = dataclasses.replace(AugmentConfig.framing(), brightness=0.0, contrast=0.0, saturation=0.0, hue_deg=0.0,
                              blur_prob=0.0, noise_std=0.0, gamma=0.0, white_balance=0.0)
    for index in range(7):
        images = _dots(64, CONE[index:index + 1])
        out, points = augment(images, CONE.expand(64, 7, 2).clone(), cfg, _generator(index))
        brightest = out[:, 0].flatten(1).argmax(dim=1)
        found = torch.stack([brightest % WIDTH, brightest // WIDTH], dim=1).float()  # (64, 2)
        flipped = (points[:, 3, 0] - CONE[3, 0]).abs() > 100  # never: flips keep the top near the middle
        assert not flipped.any()
        # The dot of keypoint ``index`` is at the warped position of ``index`` or, after a flip, of its mirror.
        candidates = torch.stack([points[:, index], points[:, FLIP_PERMUTATION[index]]], dim=1)  # (64, 2, 2)
        distance = (candidates - found[:, None]).norm(dim=-1).min(dim=1).values
        inside = ((points[:, index] >= 0) & (points[:, index] <= torch.tensor([WIDTH - 1, HEIGHT - 1]))).all(-1)
        assert (distance[inside] <= 1.0).all(), distance[inside].max()


def test_aspect_stretches_width_against_height():
    cfg = dataclasses.replace(AugmentConfig.off(), aspect=0.3)
    _, points = augment(torch.rand(256, 3, HEIGHT, WIDTH), CONE.expand(256, 7, 2).clone(), cfg, _generator())
    width = points[:, 0, 0] - points[:, 6, 0]  # base-right minus base-left
    height = points[:, 0, 1] - points[:, 3, 1]  # base minus top
    ratio = (width / height) / ((CONE[0, 0] - CONE[6, 0]) / (CONE[0, 1] - CONE[3, 1]))
    assert ratio.min() < 1 / 1.2 and ratio.max() > 1.2 and ratio.min() >= 1 / 1.3 - 1e-4 and ratio.max() <= 1.3 + 1e-4
    area = width * height / ((CONE[0, 0] - CONE[6, 0]) * (CONE[0, 1] - CONE[3, 1]))
    assert torch.allclose(area, torch.ones_like(area), atol=1e-4)  # a stretch, not a zoom


def test_gamma_and_white_balance_change_tones_within_range():
    cfg = dataclasses.replace(AugmentConfig.off(), gamma=0.3, white_balance=0.1)
    images = torch.full((64, 3, HEIGHT, WIDTH), 0.5)
    out, _ = augment(images, CONE.expand(64, 7, 2).clone(), cfg, _generator())
    assert out.min() >= 0 and out.max() <= 1
    channel_means = out.mean(dim=(2, 3))  # (64, 3)
    assert (channel_means.max(1).values - channel_means.min(1).values).max() > 0.02  # channels differ: balance
    assert channel_means.mean(1).std() > 0.02  # overall brightness varies: gamma
