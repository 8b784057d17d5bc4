"""Training for int8: calibration sets every input range, post-training quantization keeps a trained model's error,
a short quantization-aware fine-tune does not diverge. Imports no Optuna or Ray."""
import math
import subprocess
import sys

import pytest
import torch

from cones.augment import AugmentConfig
from cones.splits import split
from cones.synthetic import make_synthetic
from objectives.train import evaluate, train
from search_space.config import Config
from search_space.int8 import quantized_convs
from shipping.quantize import post_training, prepare, quantize

CFG = Config(family="unet", width=6, depth=3, batch_norm=True, head="softmax", loss="ce", batch_size=16, lr=3e-3)


@pytest.fixture(scope="module")
def data():
    return split(make_synthetic(200, seed=1), val_fraction=0.2, seed=0)


@pytest.fixture(scope="module")
def trained(data):
    return train(CFG, *data, 8, seed=0, augmentation=AugmentConfig.off(), threads=1)


def test_prepare_folds_batch_norm_and_quantizes_every_convolution(trained):
    qmodel = prepare(trained.model)
    assert not [m for m in qmodel.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    convs = [m for m in qmodel.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len(quantized_convs(qmodel)) > 0


def test_calibration_sets_every_input_range(trained, data):
    qmodel = post_training(trained.model, CFG, data[0], crops=32)
    for conv in quantized_convs(qmodel).values():
        low, high = conv.input_range.tolist()
        assert math.isfinite(low) and math.isfinite(high) and low <= high


def test_post_training_quantization_keeps_the_error(trained, data):
    qmodel = post_training(trained.model, CFG, data[0])
    assert evaluate(qmodel, CFG, data[1]).mean_px == pytest.approx(trained.metrics.mean_px, rel=0.1)


def test_short_quantization_aware_run_does_not_diverge(trained, data):
    result = quantize(trained.model, CFG, *data, 2, seed=0)
    assert result.status == "ok" and result.epochs == 2 and len(result.history) == 2
    assert all(math.isfinite(error) for error in result.history)
    # the best epoch is kept, the calibrated model (epoch 0) included: never worse than post-training quantization
    assert result.metrics.mean_px <= result.post_training.mean_px
    assert max(result.history) < 1.5 * result.post_training.mean_px
    assert result.metrics.mean_px == pytest.approx(evaluate(result.model, CFG, data[1]).mean_px)


def test_without_a_validation_set_the_last_epoch_is_kept(trained, data):
    result = quantize(trained.model, CFG, data[0], None, 1, seed=0)
    assert result.status == "ok" and result.best_epoch == 1
    assert result.metrics.mean_px == pytest.approx(evaluate(result.model, CFG, data[0]).mean_px)


def test_zero_epochs_is_post_training_quantization(trained, data):
    result = quantize(trained.model, CFG, *data, 0)
    assert result.epochs == 0 and result.best_epoch == 0 and result.metrics == result.post_training


def test_quantize_imports_neither_optuna_nor_ray():
    code = "import sys, shipping.quantize; print('optuna' in sys.modules, 'ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == \
        ["False", "False"]
