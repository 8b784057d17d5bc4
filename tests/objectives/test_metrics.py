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


def test_with_teams_each_camera_counts_once_however_many_crops_it_has():
    truth = torch.zeros(4, 7, 2)
    predicted = truth.clone()
    predicted[:3, :, 0] = 1.0  # three crops of a big team, 1 px off
    predicted[3, :, 0] = 3.0  # one crop of a small team, 3 px off
    teams = ("amz", "amz", "amz", "so")
    pooled = keypoint_metrics(predicted, truth, heatmap_mse=0.0)
    by_team = keypoint_metrics(predicted, truth, heatmap_mse=0.0, teams=teams)
    assert pooled.mean_px == pytest.approx((3 * 1.0 + 3.0) / 4)
    assert by_team.mean_px == pytest.approx((1.0 + 3.0) / 2)
    assert by_team.pck2 == pooled.pck2  # the other figures pool every crop
    with pytest.raises(ValueError, match="3 team names for 4 crops"):
        keypoint_metrics(predicted, truth, heatmap_mse=0.0, teams=teams[:3])


def test_evaluate_by_team_is_the_mean_of_each_team_s_own_error():
    from cones.synthetic import make_synthetic, with_teams
    from objectives.train import evaluate
    from search_space.registry import create_model
    from search_space.start import STARTING_POINT

    data = with_teams(make_synthetic(24, seed=1), ["ka", "kb", "kb"])  # kb holds twice ka's crops
    torch.manual_seed(0)
    model = create_model(STARTING_POINT).eval()
    per_team = [evaluate(model, STARTING_POINT, data.subset([i for i, t in enumerate(data.teams) if t == team])).mean_px
                for team in ("ka", "kb")]
    assert evaluate(model, STARTING_POINT, data, by_team=True).mean_px == pytest.approx(sum(per_team) / 2)
    assert evaluate(model, STARTING_POINT, data).mean_px == pytest.approx((per_team[0] + 2 * per_team[1]) / 3)
