"""The receptive field each trial records: exact where it can be derived, width-free on every family."""
import pytest
import torch

from search_space.config import Config
from search_space.receptive import _receptive_field, receptive_field
from search_space.registry import families, get_family


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_plain_convolutions_see_two_pixels_more_per_layer(depth):
    assert receptive_field(Config(family="plain", depth=depth, width=4)) == (2 * depth + 1,) * 2


@pytest.mark.parametrize("family", families())
def test_the_width_does_not_move_it(family):
    # receptive_field measures one channel wide; that must be what the searched widths see.
    depth = get_family(family).depths[1]
    narrow, wide = (Config(family=family, depth=depth, width=width, batch_norm=True) for width in (1, 6))
    assert _receptive_field(narrow.arch) == _receptive_field(wide.arch)


def test_a_deeper_unet_sees_more_of_the_crop():
    fields = [receptive_field(Config(family="unet", depth=depth, width=4))[0] for depth in (2, 3, 4)]
    assert fields == sorted(fields) and fields[0] < fields[-1] and fields[-1] <= 64 + 8  # d4 covers about the crop


def test_measuring_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    _receptive_field(Config(family="mobile", depth=2, width=3, expand=3).arch)
    assert torch.equal(state, torch.get_rng_state())  # so a seeded search trains exactly as before


def test_every_trial_records_it():
    from search_engine.trial import size_attrs

    attrs, _ = size_attrs(Config(family="plain", depth=3, width=4), max_bytes=81920)
    assert attrs["receptive_field"] == [7, 7]
