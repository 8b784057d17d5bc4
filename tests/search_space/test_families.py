"""Registry-driven: every registered family, at several knob settings."""
import pytest
import torch

from search_space.config import Config
from search_space.registry import create_model, families, get_family

HEADS = ("linear", "sigmoid", "softmax")


def configs():
    for family in families():
        for batch_norm in (False, True):
            for head in HEADS:
                yield Config(family=family, width=4, depth=get_family(family).depths[0], batch_norm=batch_norm,
                             head=head)


@pytest.mark.parametrize("cfg", list(configs()), ids=lambda c: f"{c.family}-{c.head}-bn{int(c.batch_norm)}")
def test_forward_shape_and_every_parameter_learns(cfg):
    torch.manual_seed(0)
    model = create_model(cfg)
    out = model(torch.rand(2, 3, 64, 48))
    assert out.shape == (2, 7, 64, 48)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


@pytest.mark.parametrize("family", families())
def test_softmax_head_sums_to_one_per_keypoint(family):
    model = create_model(Config(family=family, width=4, depth=get_family(family).depths[0], head="softmax"))
    out = model(torch.rand(1, 3, 64, 48))
    assert torch.allclose(out.sum(dim=(-2, -1)), torch.ones(1, 7), atol=1e-5)


@pytest.mark.parametrize("family", families())
def test_odd_input_size_keeps_resolution(family):
    model = create_model(Config(family=family, width=4, depth=get_family(family).depths[1]))  # most pooling
    assert model(torch.rand(1, 3, 50, 38)).shape == (1, 7, 50, 38)


def test_hand_designs_have_the_study_parameter_counts():
    resnet = create_model(Config(family="resnet", width=8, depth=2))
    unet = create_model(Config(family="unet", width=8, depth=3))
    assert sum(p.numel() for p in resnet.parameters()) == 19_479
    assert sum(p.numel() for p in unet.parameters()) == 17_663


def test_unknown_family_lists_known_ones():
    with pytest.raises(ValueError, match=f"unknown family 'vit'; known families: {', '.join(families())}$"):
        create_model(Config(family="vit"))


@pytest.mark.parametrize("bad", [dict(head="tanh"), dict(optimizer="lion"), dict(loss="ce", head="linear"),
                                 dict(width=0), dict(lr=-1.0)])
def test_config_rejects_bad_values_by_name(bad):
    key = next(iter(bad))
    with pytest.raises(ValueError, match=key):
        Config(**bad)


def test_config_round_trips_through_dict():
    cfg = Config(family="mobile", width=12, depth=3, expand=3, head="softmax", loss="ce", lr=3e-3)
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown config keys"):
        Config.from_dict({**cfg.to_dict(), "colour": "blue"})
