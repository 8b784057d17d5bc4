"""The search space under FixedTrial, and its promise to keep samples under the cap."""
import optuna
import pytest

from search_space.baselines import hand_designs
from search_space.config import Config
from search_space.registry import families, get_family, searched_families
from search_space.size import weight_bytes
from search_space.space import SearchSpace, sample_config, trial_params

CAP = 81_920


@pytest.fixture(scope="module")
def space():
    return SearchSpace.for_cap(CAP)


def test_fixed_trial_gives_the_config(space):
    params = {"family": "mobile", "depth": 3, "expand": 2, "width": 10, "batch_norm": True, "head": "softmax",
              "loss": "ce", "optimizer": "sgd", "momentum": 0.95, "lr": 0.01, "batch_size": 16,
              "weight_decay": 1e-4, "sigma": 2.0}
    cfg = sample_config(optuna.trial.FixedTrial(params), space)
    assert cfg == Config(family="mobile", width=10, depth=3, batch_norm=True, head="softmax", expand=2,
                         optimizer="sgd", lr=0.01, momentum=0.95, batch_size=16, weight_decay=1e-4, sigma=2.0,
                         loss="ce")


def test_conditional_params_only_where_they_apply(space):
    params = {"family": "resnet", "depth": 2, "width": 6, "batch_norm": False, "head": "linear",
              "optimizer": "adam", "lr": 1e-3, "batch_size": 64, "weight_decay": 1e-6, "sigma": 1.5}
    trial = optuna.trial.FixedTrial(params)
    sample_config(trial, space)
    assert set(trial.params) == set(params)  # no expand, loss or momentum asked for


@pytest.mark.parametrize("name,cfg", list(hand_designs().items()))
def test_hand_designs_round_trip_through_the_space(space, name, cfg):
    assert sample_config(optuna.trial.FixedTrial(trial_params(cfg)), space) == cfg


def test_trial_params_round_trip_through_a_study(space):
    asked = set()
    for seed in range(40):
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
        cfg = sample_config(trial, space)
        asked |= set(trial.params)
        replay = optuna.create_study()
        replay.enqueue_trial(trial_params(cfg))
        again = replay.ask()
        assert sample_config(again, space) == cfg
        assert again.params == trial.params  # trial_params names exactly what was suggested
    assert {"expand", "momentum", "loss"} <= asked  # the conditional branches were exercised


def test_only_searched_families_are_sampled(space):
    assert space.families() == list(searched_families())
    assert "plain" in families() and "plain" not in space.families()


def test_depth_and_knob_ranges_come_from_the_registry():
    roomy = SearchSpace.for_cap(10**9)  # everything fits: the registered ranges, uncut
    for family in roomy.families():
        registered = get_family(family)
        assert roomy.depths(family) == registered.depths
        assert roomy.knobs(family) == tuple(registered.knobs)
        for name, bounds in registered.knobs.items():
            assert roomy.knob_range(family, registered.depths[0], name) == bounds
    assert roomy.expands("mobile", 3) == (1, 4) and roomy.expands("resnet", 2) == (Config.expand,) * 2


def test_family_depths_is_derived_for_old_importers():
    from search_space.space import FAMILY_DEPTHS

    assert FAMILY_DEPTHS == {family: get_family(family).depths for family in families()}


def test_widest_widths_are_tight(space):
    for (family, depth, knobs), width in space.widest.items():
        cfg = Config(family=family, width=width, depth=depth, **dict(knobs))
        assert weight_bytes(cfg) <= CAP
        if width < 32:
            assert weight_bytes(cfg.replace(width=width + 1)) > CAP


def test_random_sampling_stays_under_the_cap(space):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    sizes = []
    study.optimize(lambda t: sizes.append(weight_bytes(sample_config(t, space))) or 0.0, n_trials=300)
    assert max(sizes) <= CAP


def test_a_cap_nothing_fits_is_an_error():
    with pytest.raises(ValueError, match="raise --max-kb"):
        SearchSpace.for_cap(100)
