"""Families carry their own metadata; the registry finds every family file without naming it."""
import pytest
import torch

import search_space.families
from search_space.config import Config
from search_space.registry import families, get_family, memory_format, register_family, searched_families


def test_every_family_file_is_discovered():
    modules = {get_family(name).build.__module__ for name in families()}
    assert {"search_space.families.resnet", "search_space.families.unet", "search_space.families.mobile",
            "search_space.families.plain"} <= modules
    assert all(m.startswith(search_space.families.__name__ + ".") for m in modules)


def test_the_example_family_is_registered_but_not_searched():
    assert "plain" in families()
    assert "plain" not in searched_families()
    assert set(searched_families()) == {"mobile", "resnet", "unet"}


def test_metadata_is_read_from_the_decorator():
    mobile = get_family("mobile")
    assert mobile.depths == (2, 4) and mobile.knobs == {"expand": (1, 4)} and not mobile.channels_last
    assert get_family("resnet").knobs == {}
    assert memory_format(Config(family="mobile")) == torch.contiguous_format
    assert memory_format(Config(family="resnet")) == torch.channels_last


@pytest.mark.parametrize("bad,match", [
    (dict(depths=(3, 1)), "depths must be .lowest, highest."),
    (dict(depths=(0, 2)), "depths must be"),
    (dict(depths=(1, 2), knobs={"colour": (1, 2)}), "knob 'colour' is not an integer architecture field.*expand"),
    (dict(depths=(1, 2), knobs={"width": (1, 2)}), "knob 'width'"),
    (dict(depths=(1, 2), knobs={"expand": (2, 1)}), "knob 'expand' must be"),
])
def test_bad_metadata_is_refused_by_name(bad, match):
    with pytest.raises(ValueError, match=match):
        register_family("new", **bad)


def test_a_name_registered_twice_is_refused():
    with pytest.raises(ValueError, match="'resnet' is registered twice"):
        register_family("resnet", depths=(1, 3))(lambda cfg: None)
    assert get_family("resnet").build.__module__ == "search_space.families.resnet"
