"""objectives/ablation.py: each variant changes one decision (an interaction variant two) and fits the cap; the
runs a study holds; the table's figures and verdicts."""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

import search_engine.ablation as ablation
from search_engine.ablation import DECISIONS, Variant, select, variants, widest_within
from search_space.cap import max_bytes
from search_space.config import HEADS, OPTIMIZERS, Config
from search_space.registry import searched_families
from search_space.size import weight_bytes
from search_space.space import LR_RANGE
from studies.ablation import BATCH_SIZES, BEST, finished_runs, table, verdict

CAP = max_bytes(80)
BESTS = {
    "unet softmax ce": Config(family="unet", width=7, depth=3, batch_norm=True, head="softmax", loss="ce", lr=5e-3,
                              batch_size=20),
    "resnet linear sgd": Config(family="resnet", width=8, depth=2, head="linear", optimizer="sgd", lr=2e-2),
    "mobile expand 3": Config(family="mobile", width=12, depth=3, expand=3, head="sigmoid", batch_size=4),
}
# The Config fields a change of each decision may touch: the decision, and what it forces.
TOUCHES = {"family": {"family", "width", "depth", "expand"}, "batch_norm": {"batch_norm"}, "head": {"head", "loss"},
           "batch_size": {"batch_size", "lr"}, "optimizer": {"optimizer"}}


def changed(a: Config, b: Config) -> set[str]:
    return {key for key, value in a.to_dict().items() if b.to_dict()[key] != value}


def singles(best: Config) -> list:
    return [v for v in variants(best, CAP)[0][1:] if v.decision != "interaction"]


def interactions(best: Config) -> dict:
    return {v.name: v for v in variants(best, CAP)[0] if v.decision == "interaction"}


@pytest.mark.parametrize("name", BESTS)
def test_every_variant_changes_one_decision_and_fits_the_cap(name):
    best = BESTS[name]
    found, skipped = variants(best, CAP)
    assert found[0].name == BEST and found[0].config == best and not skipped
    assert len({v.name for v in found}) == len(found)
    assert all("," not in v.name for v in found)  # --variants is comma-separated
    assert [v.decision for v in found[1:]] == sorted((v.decision for v in found[1:]), key=DECISIONS.index)
    assert all(weight_bytes(v.config) <= CAP for v in found)
    for variant in singles(best):
        assert variant.decision in changed(best, variant.config) <= TOUCHES[variant.decision], variant.name


@pytest.mark.parametrize("name", BESTS)
def test_no_two_variants_have_the_same_config(name):
    configs = [v.config for v in variants(BESTS[name], CAP)[0]]
    assert len(set(configs)) == len(configs)


@pytest.mark.parametrize("name", BESTS)
def test_the_variants_have_both_families_and_a_sigmoid_head_with_and_without_batch_norm(name):
    configs = [v.config for v in variants(BESTS[name], CAP)[0]]
    assert {(c.family, c.batch_norm) for c in configs} >= {(f, bn) for f in ("resnet", "unet") for bn in (True, False)}
    assert {c.batch_norm for c in configs if c.head == "sigmoid"} == {True, False}


def test_a_unet_with_batch_norm_and_softmax_gains_resnet_and_sigmoid_without_batch_norm():
    best = BESTS["unet softmax ce"]
    found = interactions(best)
    assert list(found) == ["family=resnet+batch_norm=False", "head=sigmoid+batch_norm=False"]
    resnet, sigmoid = found.values()
    family = next(v for v in variants(best, CAP)[0] if v.name == "family=resnet")
    assert resnet.config == family.config.replace(batch_norm=False)  # the family variant, batch norm flipped
    assert {"family", "batch_norm"} <= changed(best, resnet.config) <= TOUCHES["family"] | {"batch_norm"}
    assert resnet.change == f"{family.change}, batch norm off"
    assert changed(best, sigmoid.config) == {"head", "loss", "batch_norm"} and sigmoid.config.loss == "mse"
    assert sigmoid.change.startswith("head sigmoid, batch norm off")
    assert all(weight_bytes(v.config) <= CAP and v.decision == "interaction" for v in found.values())


def test_a_resnet_best_gains_unet_with_batch_norm_flipped():
    best = BESTS["resnet linear sgd"]
    found = interactions(best)
    assert list(found) == ["family=unet+batch_norm=True", "head=sigmoid+batch_norm=True"]
    assert {"family", "batch_norm"} <= changed(best, found["family=unet+batch_norm=True"].config)
    assert found["family=unet+batch_norm=True"].config.family == "unet"


def test_a_mobile_sigmoid_best_gains_both_families_with_batch_norm_flipped_and_no_sigmoid_one():
    assert list(interactions(BESTS["mobile expand 3"])) == ["family=resnet+batch_norm=True",
                                                            "family=unet+batch_norm=True"]


def test_an_interaction_variant_with_another_variants_config_is_left_out(monkeypatch):
    best = BESTS["unet softmax ce"]
    twin = Variant("twin", "interaction", "batch norm off again", best.replace(batch_norm=False))
    monkeypatch.setattr(ablation, "interaction_variants", lambda *args: [twin])
    found, skipped = variants(best, CAP)
    assert "twin" not in {v.name for v in found}
    assert skipped == [("twin", "the same config as batch_norm=False")]


@pytest.mark.parametrize("name", BESTS)
def test_every_other_value_of_each_decision_is_tried(name):
    best = BESTS[name]
    values = {(v.decision, getattr(v.config, v.decision)) for v in singles(best)}
    assert {f for d, f in values if d == "family"} == set(searched_families()) - {best.family}
    assert {h for d, h in values if d == "head"} == set(HEADS) - {best.head}
    assert {o for d, o in values if d == "optimizer"} == set(OPTIMIZERS) - {best.optimizer}
    assert {b for d, b in values if d == "batch_size"} == set(BATCH_SIZES) - {best.batch_size}
    assert ("batch_norm", not best.batch_norm) in values


def test_another_family_is_the_widest_within_the_bests_bytes():
    best = BESTS["unet softmax ce"]
    for variant in (v for v in variants(best, CAP)[0] if v.decision == "family"):
        size = weight_bytes(variant.config)
        assert size <= weight_bytes(best)
        assert weight_bytes(variant.config.replace(width=variant.config.width + 1)) > weight_bytes(best)
        assert variant.config.expand == Config.expand  # a family's own knobs at their defaults


def test_widest_within_is_none_when_even_the_narrowest_is_too_big():
    assert widest_within(Config(family="resnet", depth=3, width=4), 1000) is None
    assert widest_within(Config(family="resnet", depth=2, width=4), CAP).width == 8  # the hand design resnet8


def test_a_batch_change_scales_the_learning_rate_and_clamps_it_to_the_space():
    best = BESTS["unet softmax ce"]  # lr 5e-3 at batch 20
    by_size = {v.config.batch_size: v.config.lr for v in variants(best, CAP)[0] if v.decision == "batch_size"}
    assert by_size[4] == pytest.approx(1e-3)
    assert by_size[64] == pytest.approx(1.6e-2)
    fast = BESTS["resnet linear sgd"].replace(lr=3e-2, batch_size=8)  # x8 would be 0.24: above the space's range
    assert [v.config.lr for v in variants(fast, CAP)[0] if v.name == "batch_size=64"] == [LR_RANGE[1]]


def test_a_head_without_softmax_takes_mse():
    heads = {v.config.head: v.config.loss for v in variants(BESTS["unet softmax ce"], CAP)[0] if v.decision == "head"}
    assert heads == {"linear": "mse", "sigmoid": "mse"}


def test_a_variant_over_the_cap_is_left_out_with_the_reason():
    best = Config(family="mobile", width=4, depth=2)  # 1,740 bytes: no resnet or unet is that small
    found, skipped = variants(best, weight_bytes(best))  # a cap the best just fits
    assert all(weight_bytes(v.config) <= weight_bytes(best) for v in found)
    assert dict(skipped) == {"family=resnet": "no resnet model fits the cap of 1740 bytes",
                             "family=unet": "no unet model fits the cap of 1740 bytes",
                             "family=resnet+batch_norm=True": "no resnet model fits the cap of 1740 bytes",
                             "family=unet+batch_norm=True": "no unet model fits the cap of 1740 bytes"}


def test_select_keeps_the_best_and_the_named_decisions_or_variants():
    found = variants(BESTS["unet softmax ce"], CAP)[0]
    names = [v.name for v in select(found, "head,optimizer=sgd")]
    assert names == [BEST, "head=linear", "head=sigmoid", "optimizer=sgd"]
    assert select(found, None) == found
    with pytest.raises(ValueError, match="'colour' is not a decision or variant.*batch_norm"):
        select(found, "colour")


def test_select_takes_the_interaction_decision_and_its_names():
    found = variants(BESTS["unet softmax ce"], CAP)[0]
    assert [v.name for v in select(found, "interaction")] == [BEST, "family=resnet+batch_norm=False",
                                                              "head=sigmoid+batch_norm=False"]
    assert [v.name for v in select(found, "head=sigmoid+batch_norm=False")] == [BEST, "head=sigmoid+batch_norm=False"]


def run_trial(variant: str, seed: int, error: float | None, state=TrialState.COMPLETE, status="ok"):
    attrs = {"variant": variant, "seed": seed, "status": status}
    if error is not None:
        attrs["val_mean_px"] = error
    return optuna.trial.create_trial(state=state, value=error if state == TrialState.COMPLETE else None,
                                     user_attrs=attrs)


def test_finished_runs_keep_the_first_result_and_diverged_runs():
    trials = [run_trial(BEST, 0, 1.5), run_trial(BEST, 0, 9.0), run_trial("head=linear", 0, None, TrialState.FAIL,
              "diverged"), run_trial("head=linear", 1, None, TrialState.FAIL, "interrupted"),
              run_trial(BEST, 1, None, TrialState.WAITING)]
    for number, trial in enumerate(trials):
        trial.number = number
    assert finished_runs(trials) == {(BEST, 0): 1.5, ("head=linear", 0): None}


def rows_for(runs: dict) -> dict[str, dict]:
    found = select(variants(BESTS["unet softmax ce"], CAP)[0], "batch_norm,head,optimizer")
    return {row["variant"]: row for row in table(found, runs, seeds=(0, 1, 2))}


def test_the_table_compares_each_change_with_the_bests_mean_over_the_same_seeds():
    runs = {(BEST, s): e for s, e in enumerate((1.0, 1.1, 0.9))}
    runs |= {("batch_norm=False", s): e for s, e in enumerate((2.0, 2.1, 1.9))}  # far worse
    runs |= {("head=linear", s): e for s, e in enumerate((0.5, 0.6, 0.4))}  # far better
    runs |= {("head=sigmoid", s): e for s, e in enumerate((1.05, 0.8, 1.3))}  # within the spread
    runs |= {("optimizer=sgd", 0): 1.5, ("optimizer=sgd", 1): None}  # one run left: no spread
    runs |= {("optimizer=adamw", s): None for s in range(3)}
    rows = rows_for(runs)
    worse = rows["batch_norm=False"]
    assert worse["mean_px"] == pytest.approx(2.0) and worse["std_px"] == pytest.approx(0.1)
    assert worse["diff_px"] == pytest.approx(1.0) and worse["relative"] == pytest.approx(1.0)
    assert worse["combined_spread_px"] == pytest.approx(0.1 * 2 ** 0.5)
    assert (worse["verdict"], rows["head=linear"]["verdict"]) == ("worse", "better")
    assert rows["head=sigmoid"]["verdict"] == "cannot tell at this spread"
    assert rows["optimizer=sgd"]["diverged"] == 1 and rows["optimizer=sgd"]["diff_px"] == pytest.approx(0.5)
    assert rows["optimizer=sgd"]["verdict"].startswith("cannot tell: one seed")
    assert rows["optimizer=adamw"]["verdict"] == "worse: diverged on every seed"
    assert rows["optimizer=rmsprop"]["verdict"] == "not run" and rows[BEST]["verdict"] == "the reference"


def test_verdict_needs_a_difference_beyond_the_combined_spread():
    row = {"seeds": [0, 1], "mean_px": 1.2, "diff_px": 0.2, "combined_spread_px": 0.2}
    assert verdict(row, is_best=False) == "cannot tell at this spread"
    assert verdict({**row, "diff_px": -0.21}, is_best=False) == "better"
