"""Targets and decoding: a Gaussian decodes back to its sub-pixel centre."""
import pytest
import torch

from objectives.heatmaps import decode, gaussian_targets, normalised


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
