"""train(): learns, reports each epoch, stops when asked, survives divergence. Imports no Optuna or Ray."""
import math
import subprocess
import sys

import pytest
import torch

from cones.augment import AugmentConfig
from cones.splits import split
from cones.synthetic import make_synthetic
from objectives.train import ShapeLoss, balanced_weights, evaluate, soft_argmax, train
from search_space.config import Config
from search_space.registry import families, get_family

pytestmark = pytest.mark.slow
FAST = Config(family="unet", width=4, depth=2, batch_norm=True, head="softmax", loss="ce", batch_size=16, lr=3e-3)


@pytest.fixture(scope="module")
def data():
    return split(make_synthetic(160, seed=1), val_fraction=0.25, seed=0)


def test_training_lowers_the_error(data):
    train_set, val_set = data
    untrained = train(FAST, train_set, val_set, 1, augmentation=AugmentConfig.off(), schedule="constant")
    result = train(FAST, train_set, val_set, 6, augmentation=AugmentConfig.off())
    assert result.status == "ok" and result.epochs == 6 and len(result.history) == 6
    assert result.metrics.mean_px < untrained.metrics.mean_px
    assert result.metrics.mean_px == pytest.approx(evaluate(result.model, FAST, val_set).mean_px)


def test_same_seed_same_result(data):
    a = train(FAST, *data, 1, seed=5)
    b = train(FAST, *data, 1, seed=5)
    assert a.metrics.mean_px == b.metrics.mean_px


def test_on_epoch_sees_every_epoch_and_can_stop(data):
    seen = []
    result = train(FAST, *data, 5, on_epoch=lambda epoch, m: seen.append((epoch, m.mean_px)) or epoch == 2)
    assert [e for e, _ in seen] == [1, 2]
    assert result.status == "stopped" and result.epochs == 2


def test_nan_loss_ends_the_run_with_a_status(data):
    wild = Config(family="unet", width=4, depth=2, optimizer="sgd", lr=1e8, batch_size=4)
    result = train(wild, *data, 3)
    assert result.status == "diverged"
    assert "loss became" in result.reason or "not finite" in result.reason
    assert math.isinf(result.metrics.mean_px)


def test_keep_best_returns_the_best_epoch(data):
    result = train(FAST, *data, 4, keep_best=True)
    assert result.metrics.mean_px == min(result.history)
    assert result.history[result.best_epoch - 1] == min(result.history)


@pytest.mark.parametrize("family", families())
def test_every_family_trains_one_epoch(data, family):
    cfg = Config(family=family, width=4, depth=get_family(family).depths[0], batch_size=32)
    assert train(cfg, *data, 1).status == "ok"


def test_training_module_imports_neither_optuna_nor_ray():
    code = "import sys, objectives.train; print(any(m.split('.')[0] in ('optuna', 'ray') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_ema_returns_the_average_not_the_last_weights(data):
    train_set, val_set = data
    raw = train(FAST, train_set, val_set, 2, seed=3)
    averaged = train(FAST, train_set, val_set, 2, seed=3, ema=0.9)
    raw_weights = dict(raw.model.named_parameters())
    differs = [not torch.allclose(p, raw_weights[name]) for name, p in averaged.model.named_parameters()]
    assert any(differs)  # same seed, same steps: only the averaging differs
    assert averaged.metrics.mean_px == pytest.approx(evaluate(averaged.model, FAST, val_set).mean_px)
    assert math.isfinite(averaged.metrics.mean_px)


def test_without_validation_set_trains_every_epoch_and_reports_the_fit(data):
    train_set, _ = data
    result = train(FAST, train_set, None, 2)
    assert result.status == "ok" and result.epochs == 2 and result.history == []
    assert result.metrics.mean_px == pytest.approx(evaluate(result.model, FAST, train_set).mean_px)
    seen = []
    train(FAST, train_set, None, 2, on_epoch=lambda epoch, metrics: seen.append((epoch, metrics)))
    assert seen == [(1, None), (2, None)]  # progress, with nothing to score
    with pytest.raises(ValueError, match="need a validation set"):
        train(FAST, train_set, None, 2, keep_best=True)


def test_stopping_without_validation_set_reports_the_fit_where_it_stopped(data):
    train_set, _ = data
    result = train(FAST, train_set, None, 3, on_epoch=lambda epoch, metrics: epoch == 1)
    assert result.status == "stopped" and result.epochs == 1
    assert result.metrics.mean_px == pytest.approx(evaluate(result.model, FAST, train_set).mean_px)


def test_soft_argmax_finds_a_sharp_peak():
    logits = torch.full((1, 2, 64, 48), -50.0)
    logits[0, 0, 20, 10] = 50.0
    logits[0, 1, 5, 40] = 50.0
    assert torch.allclose(soft_argmax(logits), torch.tensor([[[10.0, 20.0], [40.0, 5.0]]]), atol=1e-3)


def test_line_term_punishes_a_bent_flank_but_not_the_labels_own_bend():
    cone = torch.tensor([[[33.0, 50.0], [29.0, 36.0], [28.0, 21.0], [24.0, 4.0], [19.0, 21.0], [17.0, 36.0],
                          [13.0, 50.0]]])
    line = ShapeLoss(line=1.0)
    assert line(cone, cone).item() == 0.0
    bent = cone.clone()
    bent[0, 1, 0] += 4.0  # mid-right pushed 4 px outward
    assert line(bent, cone).item() > 0.1
    assert ShapeLoss(coordinate=1.0)(bent, cone).item() == pytest.approx(4.0 / 7)


def test_shape_terms_train(data):
    result = train(FAST, *data, 1, shape=ShapeLoss(coordinate=0.1, line=0.1))
    assert result.status == "ok" and math.isfinite(result.metrics.mean_px)


def test_balanced_weights_give_every_team_the_same_share():
    weights = balanced_weights(("a",) * 6 + ("b",) * 2)
    assert weights[:6].sum().item() == pytest.approx(weights[6:].sum().item())
    draws = torch.multinomial(weights, 8000, replacement=True, generator=torch.Generator().manual_seed(0))
    assert 0.45 < (draws >= 6).double().mean().item() < 0.55
