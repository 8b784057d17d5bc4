"""Targets and decoding: a Gaussian decodes back to its sub-pixel centre."""
import pytest
import torch

from cones.types import FLIP_PERMUTATION
from objectives.heatmaps import decode, decode_local, flip_back, gaussian_targets, normalised


def test_target_peaks_at_the_keypoint():
    maps = gaussian_targets(torch.tensor([[[5.0, 9.0]]]), height=16, width=12, sigma=1.5)
    assert maps.shape == (1, 1, 16, 12)
    assert maps[0, 0, 9, 5] == pytest.approx(1.0)
    assert maps[0, 0].argmax().item() == 9 * 12 + 5


@pytest.mark.parametrize("x,y", [(10.0, 20.0), (10.3, 20.7), (3.45, 40.2), (46.2, 60.1)])
def test_decode_recovers_sub_pixel_centres(x, y):
    maps = gaussian_targets(torch.tensor([[[x, y]]]), height=64, width=48, sigma=1.5)
    decoded = decode(maps)[0, 0]
    assert decoded[0].item() == pytest.approx(x, abs=0.12)
    assert decoded[1].item() == pytest.approx(y, abs=0.12)


def test_decode_works_on_softmax_maps():
    keypoints = torch.tensor([[[12.4, 30.6], [40.0, 5.0]]])
    maps = normalised(gaussian_targets(keypoints, 64, 48, 2.0))
    assert torch.allclose(normalised(maps).sum(dim=(-2, -1)), torch.ones(1, 2))
    assert torch.allclose(decode(maps), keypoints, atol=0.15)


def test_decode_at_the_border_stays_inside():
    maps = torch.zeros(1, 1, 8, 8)
    maps[0, 0, 0, 7] = 1.0
    x, y = decode(maps)[0, 0].tolist()
    assert 6.5 <= x <= 7.5 and -0.5 <= y <= 0.5


def test_flat_heatmap_decodes_without_nan():
    assert torch.isfinite(decode(torch.zeros(2, 7, 64, 48))).all()


def test_peak_on_the_border_is_not_pushed_outward():
    maps = gaussian_targets(torch.tensor([[[46.8, 30.0]]]), height=64, width=48, sigma=1.5)
    assert decode(maps)[0, 0, 0].item() == pytest.approx(47.0)


@pytest.mark.parametrize("x,y,tolerance", [(10.0, 20.0, 0.1), (10.3, 20.7, 0.1), (3.45, 40.2, 0.1),
                                           (46.2, 60.1, 0.15)])  # one px from the border: a 3 px window
def test_local_decode_recovers_sub_pixel_centres_of_softmax_maps(x, y, tolerance):
    maps = normalised(gaussian_targets(torch.tensor([[[x, y]]]), height=64, width=48, sigma=1.13))
    decoded = decode_local(maps)[0, 0]
    assert decoded[0].item() == pytest.approx(x, abs=tolerance)
    assert decoded[1].item() == pytest.approx(y, abs=tolerance)


def test_local_decode_ignores_a_weaker_second_peak():
    maps = normalised(gaussian_targets(torch.tensor([[[10.0, 20.0], [30.0, 50.0]]]), 64, 48, 1.5))
    two_peaks = (maps[:, :1] + 0.8 * maps[:, 1:]) / 1.8  # (1, 1, H, W): the stronger at (10, 20)
    assert torch.allclose(decode_local(two_peaks)[0, 0], torch.tensor([10.0, 20.0]), atol=0.05)


def test_local_decode_of_a_dead_map_is_finite():
    assert torch.isfinite(decode_local(-torch.ones(2, 7, 64, 48))).all()


def test_flip_back_undoes_a_mirror_with_sides_swapped():
    keypoints = torch.tensor([[[33.0, 50.0], [29.0, 36.0], [28.0, 21.0], [24.0, 4.0], [19.0, 21.0], [17.0, 36.0],
                               [13.0, 50.0]]])
    maps = gaussian_targets(keypoints, 64, 48, 1.5)
    mirrored = keypoints.clone()
    mirrored[..., 0] = 47 - mirrored[..., 0]
    mirrored = mirrored[:, list(FLIP_PERMUTATION)]  # what a model sees on the mirrored crop, in canonical order
    assert torch.allclose(flip_back(gaussian_targets(mirrored, 64, 48, 1.5), FLIP_PERMUTATION), maps, atol=1e-6)
