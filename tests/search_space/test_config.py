"""``Config.arch`` (the size-cache key) holds exactly the fields that change the built network."""
import dataclasses

import pytest
import torch

from search_space.config import ARCH_FIELDS, HEADS, LOSSES, OPTIMIZERS, Config
from search_space.registry import create_model, families, get_family
from search_space.size import fold_batch_norm, state_dict_bytes

TRAINING_FIELDS = [f.name for f in dataclasses.fields(Config) if f.name not in ARCH_FIELDS]
CHOICES = {"family": families(), "head": HEADS, "optimizer": OPTIMIZERS, "loss": LOSSES}


def depths(family):
    low, high = get_family(family).depths
    return range(low, high + 1)


def base(family):
    # depth 2 where the family allows, so that other families take the same depth; softmax head so that
    # loss="ce" is valid; non-zero weight decay so that halving it changes it
    return Config(family=family, width=4, depth=2 if 2 in depths(family) else depths(family)[0], head="softmax",
                  weight_decay=1e-4)


def changed(cfg, name):
    """``cfg`` with field ``name`` set to another valid value."""
    value = getattr(cfg, name)
    if name == "family":
        value = next(f for f in families() if f != cfg.family and cfg.depth in depths(f))
    elif isinstance(value, bool):
        value = not value
    elif isinstance(value, int):
        value += 1
    elif isinstance(value, float):
        value /= 2
    elif name in CHOICES:
        value = next(c for c in CHOICES[name] if c != value)
    else:
        pytest.fail(f"add the choices of the new str field {name!r} to CHOICES")
    return cfg.replace(**{name: value})


def network(cfg):
    """What ``create_model(cfg)`` builds: deployed bytes (uncached), tensor shapes, output on a fixed input."""
    torch.manual_seed(0)
    model = create_model(cfg).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 16, 12, generator=torch.Generator().manual_seed(0)))  # (1, 7, 16, 12)
    shapes = [tuple(t.shape) for t in model.state_dict().values()]
    return state_dict_bytes(fold_batch_norm(model)), shapes, out


def same(a, b):
    return a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_arch_is_the_values_of_the_arch_fields():
    cfg = Config(family="mobile", width=12, depth=3, expand=3, lr=3e-3)
    assert cfg.arch == tuple(getattr(cfg, name) for name in ARCH_FIELDS)
    assert cfg.arch == Config(**dict(zip(ARCH_FIELDS, cfg.arch))).arch
    assert {"family", "width", "depth", "expand"} <= set(ARCH_FIELDS) and "lr" not in ARCH_FIELDS


@pytest.mark.parametrize("name", ARCH_FIELDS)
def test_every_arch_field_changes_the_network_of_some_family(name):
    # batch_norm and head leave the deployed bytes alone (folding, a parameter-free activation) but change
    # the network; a family-only knob (expand) changes only its family's.
    differ = [f for f in families() if not same(network(base(f)), network(changed(base(f), name)))]
    assert differ, f"{name} is marked arch but no family's network depends on it"


@pytest.mark.parametrize("name", TRAINING_FIELDS)
def test_training_fields_leave_every_network_alone(name):
    # A field that changed the network without metadata=ARCH would get another model's cached size.
    for family in families():
        assert same(network(base(family)), network(changed(base(family), name))), (
            f"{name} changes the {family} network: mark it metadata=ARCH in search_space/config.py")
