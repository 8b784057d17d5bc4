import math

import pytest
import torch

from objectives.metrics import Metrics, keypoint_metrics


def test_metrics_on_known_errors():
    truth = torch.zeros(2, 7, 2)
    predicted = truth.clone()
    predicted[0, :, 0] = 0.5  # 7 keypoints 0.5 px off
    predicted[1, :, 1] = torch.tensor([1.5, 2.5, 2.5, 2.5, 4.0, 4.0, 4.0])
    m = keypoint_metrics(predicted, truth, heatmap_mse=0.1)
    errors = [0.5] * 7 + [1.5, 2.5, 2.5, 2.5, 4.0, 4.0, 4.0]
    assert m.mean_px == pytest.approx(sum(errors) / 14)
    assert m.pck1 == pytest.approx(7 / 14)
    assert m.pck2 == pytest.approx(8 / 14)
    assert m.pck3 == pytest.approx(11 / 14)
    assert m.per_keypoint_px[0] == pytest.approx((0.5 + 1.5) / 2)
    assert m.heatmap_mse == 0.1


def test_non_finite_predictions_score_as_failed():
    predicted = torch.full((1, 7, 2), float("nan"))
    m = keypoint_metrics(predicted, torch.zeros(1, 7, 2), heatmap_mse=0.0)
    assert math.isinf(m.mean_px) and m.pck3 == 0.0
    assert m == Metrics.failed()
