"""analysis/verdicts.py: each question judged from the search's trials and from the ablation by the one rule;
disagreements flagged; the report's table, with the command to run the ablation when there is none."""
from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from analysis.report import TWICE_TITLE, main
from analysis.study_data import read_trials, study_info
from analysis.verdicts import (CANNOT_TELL, REFUTED, SUPPORTED, Ablation, TwiceRow, Verdict, rule_row,
                               ablation_batch_norm, ablation_batch_norm_unet, ablation_batch_size, ablation_collapse,
                               ablation_family, ablation_softmax, answer_twice, find_ablation, read_ablation,
                               search_batch_norm_unet, search_batch_size, search_collapse, search_family,
                               search_softmax)
from studies.ablation import compare
from studies.attrs import ABLATION_OF

BEST = {"family": "unet", "batch_norm": True, "head": "softmax", "batch_size": 20, "optimizer": "adam"}


def searched(build, groups: dict, tmp_path=None, name: str = "cones"):
    """A search study: ``groups`` maps trial parameters (a tuple of (name, value) pairs) to their errors."""
    study, url = build.new_study(tmp_path, multi=False, name=name)
    for params, errors in groups.items():
        for i, error in enumerate(errors):
            build.add_trial(study, "ok", kb=10 + i, error=error, **dict(params))
    return study, url


def verdict_of(judge, build, groups: dict) -> Verdict:
    study, url = searched(build, groups)
    return judge(read_trials(study), study_info(study, url or "memory"))


RESNET, UNET = (("family", "resnet"),), (("family", "unet"),)


def test_the_search_supports_resnet_when_its_error_is_lower_beyond_the_spread(build):
    got = verdict_of(search_family, build, {RESNET: (2.0, 2.1, 1.9), UNET: (3.0, 3.1, 2.9)})
    assert got.verdict == SUPPORTED
    assert "resnet median 2.00 px (sd 0.10, n=3) vs unet median 3.00 px" in got.figures


def test_the_search_refutes_resnet_when_unets_error_is_lower_beyond_the_spread(build):
    assert verdict_of(search_family, build, {RESNET: (3.0, 3.1, 2.9), UNET: (2.0, 2.1, 1.9)}).verdict == REFUTED


def test_overlapping_spreads_cannot_tell(build):
    assert verdict_of(search_family, build, {RESNET: (2.0, 2.6, 3.2), UNET: (2.3, 2.9, 3.5)}).verdict == CANNOT_TELL


def test_a_thin_group_cannot_tell_and_says_why(build):
    got = verdict_of(search_family, build, {RESNET: (2.0, 2.1), UNET: (3.0, 3.1, 2.9)})
    assert got == Verdict(CANNOT_TELL, "resnet: too few trials to say (n=2, need 3)")


def test_batch_norm_helping_unet_more_than_resnet(build):
    def groups(unet_gain: float) -> dict:
        return {(("family", f), ("batch_norm", bn)): tuple(e + (gain if not bn else 0) for e in (2.0, 2.1, 1.9))
                for f, gain in (("unet", unet_gain), ("resnet", 0.2)) for bn in (True, False)}

    assert verdict_of(search_batch_norm_unet, build, groups(1.5)).verdict == SUPPORTED
    assert verdict_of(search_batch_norm_unet, build, groups(0.2)).verdict == CANNOT_TELL


def test_sigmoid_without_batch_norm_collapses_in_the_search(build):
    study, url = build.new_study(None, multi=False)
    for bn, pck3 in ((False, 0.02), (True, 0.8)):
        for i in range(3):
            build.add_trial(study, "ok", kb=10, error=20.0 if pck3 < 0.1 else 2.0, pck3=pck3, head="sigmoid",
                            batch_norm=bn)
    got = search_collapse(read_trials(study), study_info(study, "memory"))
    assert got.verdict == SUPPORTED
    assert "sigmoid without BN 3 of 3 runs collapsed or diverged" in got.figures
    # Sigmoid runs with batch norm stopped after one epoch, still near zero PCK: early, not collapsed.
    for _ in range(3):
        build.add_trial(study, "stopped", kb=10, error=30.0, pck3=0.01, head="sigmoid", batch_norm=True, epochs=1)
    again = search_collapse(read_trials(study), study_info(study, "memory"))
    assert again == got


def test_softmax_must_beat_every_other_head(build):
    heads = {(("head", "softmax"),): (2.0, 2.1, 1.9), (("head", "linear"),): (3.0, 3.1, 2.9)}
    assert verdict_of(search_softmax, build, {**heads, (("head", "sigmoid"),): (4.0, 4.1, 3.9)}).verdict == SUPPORTED
    assert verdict_of(search_softmax, build, {**heads, (("head", "sigmoid"),): (1.0, 1.1, 0.9)}).verdict == REFUTED


def test_batch_size_hardly_matters_when_within_the_spread(build):
    small, large = (("batch_size", 4),), (("batch_size", 64),)
    assert verdict_of(search_batch_size, build, {small: (2.0, 2.05, 2.1), large: (2.02, 2.07, 2.12)}).verdict == SUPPORTED
    # Within a spread of a fifth of the error: no evidence either way.
    assert verdict_of(search_batch_size, build, {small: (2.0, 2.5, 3.0), large: (2.2, 2.7, 3.2)}).verdict == CANNOT_TELL
    assert verdict_of(search_batch_size, build, {small: (2.0, 2.1, 1.9), large: (3.0, 3.1, 2.9)}).verdict == REFUTED


def config_of(variant: str, best: dict) -> dict:
    """The config a variant name says: "family=resnet+batch_norm=False" is the best with those two values."""
    values = dict(change.split("=") for change in variant.split("+") if variant != "best")
    parsed = {k: v == "True" if v in ("True", "False") else int(v) if v.isdigit() else v for k, v in values.items()}
    return {**best, **parsed}


def ablation(runs: dict[str, tuple], best: dict = BEST, collapsed: tuple[str, ...] = ()) -> Ablation:
    """An ablation over seeds 0, 1, ...: variant -> its error per seed (None: diverged)."""
    errors = {(v, seed): e for v, es in runs.items() for seed, e in enumerate(es)}
    failed = {key: int(e is None or key[0] in collapsed) for key, e in errors.items()}
    configs = {v: config_of(v, best) for v in runs}
    return Ablation("cones-ablation", "study cones trial 0", best, configs, {}, errors, failed)


def test_the_ablation_decides_the_family_against_the_bests_runs():
    worse = ablation({"best": (1.5, 1.6, 1.4), "family=resnet": (2.0, 2.1, 1.9)})
    assert ablation_family(worse).verdict == REFUTED  # the best is a U-Net: ResNet at its size is worse
    assert "over 3 common seeds, combined spread 0.141 (worse)" in ablation_family(worse).figures
    better = ablation({"best": (2.0, 2.1, 1.9), "family=resnet": (1.5, 1.6, 1.4)})
    assert ablation_family(better).verdict == SUPPORTED
    close = ablation({"best": (1.5, 1.9, 1.1), "family=resnet": (1.6, 2.0, 1.2)})
    assert ablation_family(close).verdict == CANNOT_TELL


def test_the_ablation_cannot_tell_from_one_seed_or_a_variant_not_run():
    assert ablation_batch_norm(ablation({"best": (1.5,), "batch_norm=False": (3.0,)})).verdict == CANNOT_TELL
    missing = ablation_batch_norm(ablation({"best": (1.5, 1.6)}))
    assert missing == Verdict(CANNOT_TELL, "batch_norm=False: no finished run in ablation 'cones-ablation'")


def test_a_variant_diverging_on_every_seed_loses():
    assert ablation_batch_norm(ablation({"best": (1.5, 1.6), "batch_norm=False": (None, None)})).verdict == SUPPORTED


def test_an_arm_by_config_is_the_matching_variant_nearest_the_best():
    ab = ablation({"best": (1.5,), "batch_norm=False": (2.0,), "head=sigmoid+batch_norm=False": (3.0,)})
    assert ab.arm_where("unet without BN", family="unet", batch_norm=False) == (
        "unet without BN (batch_norm=False)", {0: 2.0})
    assert ab.arm_where("unet with BN", family="unet", batch_norm=True) == ("unet with BN (best)", {0: 1.5})
    assert ab.arm_where("resnet with BN", family="resnet", batch_norm=True) == ("resnet with BN", {})


UNET_AND_RESNET = ("best", "batch_norm=False", "family=resnet", "family=resnet+batch_norm=False")


def four_arms(unet_gain: float, resnet_gain: float, jitter: float = 0.01) -> dict[str, tuple]:
    """unet with BN (the best), unet without, resnet with, resnet without: BN lowers each family's error by its
    gain; ``jitter`` is the spread over seeds."""
    centres = (1.5, 1.5 + unet_gain, 2.0, 2.0 + resnet_gain)
    return {v: (c - jitter, c, c + jitter) for v, c in zip(UNET_AND_RESNET, centres)}


def test_batch_norm_helping_unet_more_than_resnet_in_the_ablation():
    got = ablation_batch_norm_unet(ablation(four_arms(0.6, 0.1)))
    assert got.verdict == SUPPORTED
    assert "unet with BN (best) mean 1.500 px, unet without BN (batch_norm=False) 2.100 px" in got.figures
    assert "batch norm gains +0.600 px" in got.figures and "batch norm gains +0.100 px" in got.figures
    assert "unet's gain - resnet's +0.500 px, combined spread of the four arms 0.020" in got.figures
    assert ablation_batch_norm_unet(ablation(four_arms(0.1, 0.6))).verdict == REFUTED
    assert ablation_batch_norm_unet(ablation(four_arms(0.6, 0.5, jitter=0.2))).verdict == CANNOT_TELL


def test_batch_norm_unet_cannot_tell_without_an_arm_and_names_it():
    runs = four_arms(0.6, 0.1)
    del runs["family=resnet+batch_norm=False"]
    got = ablation_batch_norm_unet(ablation(runs))
    assert got == Verdict(CANNOT_TELL, "resnet without BN: no finished run in ablation 'cones-ablation'; rerunning "
                                       "runners/ablate.py with the same options adds it")


def test_batch_norm_unet_cannot_tell_when_an_arm_diverged_on_every_seed():
    got = ablation_batch_norm_unet(ablation({**four_arms(0.6, 0.1), "batch_norm=False": (None, None, None)}))
    assert got.verdict == CANNOT_TELL and got.figures.startswith("unet without BN (batch_norm=False) diverged")


def test_sigmoid_without_batch_norm_collapses_in_the_ablation_when_the_best_has_it():
    runs = {"best": (1.5, 1.6, 1.4), "head=sigmoid": (2.0, 2.1, 1.9),
            "head=sigmoid+batch_norm=False": (20.0, 21.0, 19.0)}
    got = ablation_collapse(ablation(runs, collapsed=("head=sigmoid+batch_norm=False",)))
    assert got.verdict == SUPPORTED
    assert got.figures.startswith("sigmoid without BN (head=sigmoid+batch_norm=False) 3 of 3 seeds collapsed or "
                                  "diverged vs sigmoid with BN (head=sigmoid) 0 of 3")
    assert ablation_collapse(ablation(runs)).verdict == REFUTED  # it trained on every seed


def test_sigmoid_without_batch_norm_collapses_in_the_ablation_when_the_best_has_none():
    no_bn = {**BEST, "batch_norm": False, "head": "linear"}
    runs = {"best": (1.5, 1.6, 1.4), "head=sigmoid": (20.0, 21.0, 19.0),
            "head=sigmoid+batch_norm=True": (2.0, 2.1, 1.9)}
    assert ablation_collapse(ablation(runs, no_bn, collapsed=("head=sigmoid",))).verdict == SUPPORTED
    assert ablation_collapse(ablation(runs, no_bn)).verdict == REFUTED


def test_the_collapse_cannot_tell_without_sigmoid_and_batch_norm_and_names_the_arm():
    got = ablation_collapse(ablation({"best": (1.5, 1.6, 1.4), "head=sigmoid": (2.0, 2.1, 1.9)}))
    assert got.verdict == CANNOT_TELL
    assert got.figures.startswith("sigmoid without BN: no finished run in ablation 'cones-ablation'; rerunning")


def test_the_ablation_softmax_and_batch_size():
    heads = {"best": (1.5, 1.6, 1.4), "head=linear": (2.0, 2.1, 1.9)}
    assert ablation_softmax(ablation({**heads, "head=sigmoid": (2.5, 2.6, 2.4)})).verdict == SUPPORTED
    assert ablation_softmax(ablation({**heads, "head=sigmoid": (1.0, 1.1, 0.9)})).verdict == REFUTED
    close = {"batch_size=4": (1.5, 1.55, 1.45), "batch_size=64": (1.52, 1.57, 1.47)}
    assert ablation_batch_size(ablation(close)).verdict == SUPPORTED
    noisy = {"batch_size=4": (1.5, 1.9, 1.1), "batch_size=64": (1.6, 2.0, 1.2)}
    assert ablation_batch_size(ablation(noisy)).verdict == CANNOT_TELL
    apart = {"batch_size=4": (1.5, 1.6, 1.4), "batch_size=64": (3.0, 3.1, 2.9)}
    assert ablation_batch_size(ablation(apart)).verdict == REFUTED


def test_the_rule_is_the_ablation_tables():
    a, b = [2.0, 2.3, 1.9], [1.5, 1.6, 1.2]
    row, table = rule_row(a, b, lambda x: sum(x) / len(x)), compare(a, b)
    assert row["diff_px"] == pytest.approx(table["diff_px"])
    assert row["combined_spread_px"] == pytest.approx(table["combined_spread_px"])


def test_agree_needs_both_sources_to_tell():
    def row(search: str, ablation: str | None) -> TwiceRow:
        return TwiceRow("k", "claim", "", Verdict(search, ""), None if ablation is None else Verdict(ablation, ""))

    assert row(SUPPORTED, REFUTED).agree is False and row(REFUTED, REFUTED).agree is True
    assert row(SUPPORTED, CANNOT_TELL).agree is None and row(SUPPORTED, None).agree is None


# ---------------------------------------------------------------- on storage: the studies the runners write

VARIANT = CategoricalDistribution(["best", "family=resnet", "batch_norm=False", "head=linear", "head=sigmoid"])


def add_run(study: optuna.Study, variant: str, seed: int, error: float | None, pck3: float = 0.9) -> None:
    """One run as runners/ablate.py records it: parameters and user attributes variant and seed; a diverged run is
    FAIL with status 'diverged'."""
    attrs = {"variant": variant, "seed": seed, "decision": variant.split("=")[0], "change": f"change {variant}",
             "config": config_of(variant, BEST), "status": "ok" if error is not None else "diverged"}
    if error is not None:
        attrs.update(val_mean_px=error, val_pck3=pck3)
    study.add_trial(optuna.trial.create_trial(
        params={"variant": variant, "seed": seed}, distributions={"variant": VARIANT, "seed": IntDistribution(0, 9)},
        state=TrialState.COMPLETE if error is not None else TrialState.FAIL, value=error, user_attrs=attrs))


def make_ablation(url: str, name: str = "cones-ablation", source: str = "study cones trial 0",
                  variants: tuple[str, ...] = VARIANT.choices) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=url)
    configs = {v: config_of(v, BEST) for v in variants}
    for key, value in {ABLATION_OF: source, "best_config": BEST, "variants": configs}.items():
        study.set_user_attr(key, value)
    for seed, (best, resnet) in enumerate(((1.5, 2.0), (1.6, 2.1), (1.4, 1.9))):
        add_run(study, "best", seed, best)
        add_run(study, "family=resnet", seed, resnet)  # ResNet worse at the best's size: the claim is refuted
    add_run(study, "head=sigmoid", 0, None)
    add_run(study, "head=sigmoid", 1, 1.7, pck3=0.02)
    return study


@pytest.fixture(scope="module")
def storages(tmp_path_factory, build):
    """Two search studies where ResNet beats U-Net beyond the spread: 'cones' with an ablation that says the
    opposite, 'lonely' with none; and a third study ablated under another name."""
    path = tmp_path_factory.mktemp("verdicts")
    groups = {RESNET: (2.0, 2.1, 1.9), UNET: (3.0, 3.1, 2.9)}
    _, url = searched(build, groups, path)
    make_ablation(url)
    searched(build, groups, path, name="lonely")
    searched(build, groups, path, name="renamed")
    make_ablation(url, name="other-name", source="study renamed trial 2")
    return url


def test_read_ablation_keeps_errors_and_failures(storages):
    got = read_ablation(find_ablation(storages, "cones"))
    assert got.best == BEST and got.changes["family=resnet"] == "change family=resnet"
    assert list(got.configs) == list(VARIANT.choices)  # the study's variants, run or not
    assert got.configs["batch_norm=False"] == {**BEST, "batch_norm": False}
    assert got.errors[("best", 2)] == 1.4 and got.errors[("head=sigmoid", 0)] is None
    assert (got.failed[("head=sigmoid", 0)], got.failed[("head=sigmoid", 1)], got.failed[("best", 0)]) == (1, 1, 0)


def test_read_ablation_takes_the_runs_configs_without_the_variants_attribute(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    make_ablation(url, variants=())
    assert read_ablation(optuna.load_study(study_name="cones-ablation", storage=url)).configs == {
        v: config_of(v, BEST) for v in ("best", "family=resnet", "head=sigmoid")}


def test_an_ablation_under_another_name_is_found_by_its_source(storages):
    assert find_ablation(storages, "renamed").study_name == "other-name"
    assert find_ablation(storages, "lonely") is None


def test_a_disagreement_between_the_sources_is_flagged(storages):
    study = optuna.load_study(study_name="cones", storage=storages)
    rows = {r.key: r for r in answer_twice(read_trials(study), study_info(study, storages)).rows}
    family = rows["family"]
    assert (family.search.verdict, family.ablation.verdict, family.agree) == (SUPPORTED, REFUTED, False)
    assert rows["batch_norm"].agree is None  # the ablation has no batch-norm run


def report_page(url: str, study: str, out) -> str:
    assert main(["--study", study, "--storage", url, "--out", str(out), "--no-png"]) == 0
    return (out / "report.html").read_text(encoding="utf-8")


def test_the_report_answers_twice_and_names_the_disagreement(storages, tmp_path):
    page = report_page(storages, "cones", tmp_path)
    assert f"<h2>{TWICE_TITLE.replace(chr(39), '&#x27;')}</h2>" in page
    assert "The sources disagree on: ResNet beats U-Net." in page
    assert "<b>NO</b>: search supported, ablation refuted" in page
    assert page.count("<b>cannot tell at this spread</b>") >= 4
    assert "The ablation is around study cones trial 0; the search&#x27;s best is now trial 2" in page


def test_the_report_says_how_to_run_a_missing_ablation(storages, tmp_path):
    page = report_page(storages, "lonely", tmp_path)
    assert "No ablation of study lonely in this storage yet" in page
    assert f"<pre>python runners/ablate.py --study lonely --storage {storages}</pre>" in page
    assert "<b>supported</b>" in page  # the search still answers
