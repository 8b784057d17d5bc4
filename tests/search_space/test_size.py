"""weight_bytes is exact: it equals the bytes of the folded model's saved tensors."""
import random

import pytest
import torch

from search_space.cap import max_bytes
from search_space.config import Config
from search_space.registry import create_model, families, get_family
from search_space.size import fold_batch_norm, measure, state_dict_bytes, weight_bytes
from search_space.space import MAX_WIDTH, MIN_WIDTH


def random_configs(n=24, seed=0):
    rng = random.Random(seed)
    for _ in range(n):
        family = rng.choice(families())
        low, high = get_family(family).depths
        yield Config(family=family, width=rng.randint(2, 12), depth=rng.randint(low, high),
                     batch_norm=rng.random() < 0.5, head=rng.choice(["linear", "sigmoid", "softmax"]),
                     expand=rng.randint(1, 4))


def trained_in_bn_stats(model):
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, 64, 48))  # non-trivial running statistics
    return model


@pytest.mark.parametrize("cfg", list(random_configs()), ids=str)
def test_weight_bytes_equals_saved_folded_tensors(cfg):
    torch.manual_seed(0)
    folded = fold_batch_norm(trained_in_bn_stats(create_model(cfg)))
    assert weight_bytes(cfg) == state_dict_bytes(folded)
    assert measure(cfg).params * 4 == weight_bytes(cfg)


@pytest.mark.parametrize("family", families())
def test_folding_keeps_the_output(family):
    torch.manual_seed(0)
    model = trained_in_bn_stats(create_model(Config(family=family, width=4, depth=2, batch_norm=True)))
    for module in model.modules():  # make the affine parameters non-trivial too
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    x = torch.rand(3, 3, 64, 48)
    assert torch.allclose(model.eval()(x), fold_batch_norm(model)(x), atol=1e-5)


@pytest.mark.parametrize("family", families())
def test_every_registered_depth_builds_and_grows_with_width(family):
    low, high = get_family(family).depths
    for depth in range(low, high + 1):
        assert weight_bytes(Config(family=family, width=MIN_WIDTH, depth=depth)) < \
            weight_bytes(Config(family=family, width=MAX_WIDTH, depth=depth))


def test_batch_norm_costs_nothing_once_folded():
    plain, with_bn = Config(family="unet", width=8, depth=3), Config(family="unet", width=8, depth=3, batch_norm=True)
    assert weight_bytes(plain) == weight_bytes(with_bn) == 17_663 * 4


def test_macs_of_a_single_convolution_network():
    # resnet depth 1 width 1: stem 7x7 3->1, block 1->2 (3x3 1->2, 3x3 2->2, 1x1 1->2), head 1x1 2->7
    per_pixel = 3 * 49 * 1 + 9 * 1 * 2 + 9 * 2 * 2 + 1 * 2 + 2 * 7
    assert measure(Config(family="resnet", width=1, depth=1)).macs == per_pixel * 64 * 48


def test_max_bytes_rejects_non_positive_caps():
    assert max_bytes(80) == 81_920
    with pytest.raises(ValueError, match="--max-kb must be > 0, got -3"):
        max_bytes(-3)
