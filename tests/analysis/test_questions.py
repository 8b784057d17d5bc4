import re

from analysis.questions import MIN_GROUP, answer_all, baseline_pairs, progress_sentence
from analysis.study_data import read_trials, study_info

NUMBER = re.compile(r"\d+\.\d\d px")


def answers(study_and_url):
    study, url = study_and_url
    return {a.key: a for a in answer_all(read_trials(study), study_info(study, url))}


def text(answer) -> str:
    return " ".join(answer.sentences)


def test_every_question_is_answered_with_numbers(rich_study):
    got = answers(rich_study)
    assert list(got) == ["family", "batch_norm", "head", "batch_size", "optimizer", "receptive_field"]
    for answer in got.values():
        assert answer.sentences[0].startswith("From 39 completed trials that ran all 20 epochs (1 stopped early")
        assert NUMBER.search(text(answer)), answer.key
        assert "too few" not in text(answer).lower(), answer.key
        assert answer.figure.data


def test_family_names_the_lowest_median(rich_study):
    assert "Lowest median error: resnet" in text(answers(rich_study)["family"])


def test_batch_norm_per_family_and_hand_designs(rich_study):
    sentences = text(answers(rich_study)["batch_norm"])
    for family in ("resnet", "unet", "mobile"):
        assert re.search(rf"{family} - without BN: .*; batch norm lowers the median by \d+\.\d\d px\.", sentences)
    assert ("Hand designs differing only in batch_norm: resnet8-linear (batch_norm=False) 4.10 px vs "
            "resnet8-linear-bn (batch_norm=True) 3.20 px") in sentences


def test_sigmoid_without_batch_norm_collapse_is_counted(rich_study):
    # Six collapsed completed runs and one diverged; the stopped sigmoid run is not counted (early, not collapsed).
    assert "7 of 7 sigmoid-without-BN runs trained to the end or diverged (6 collapsed, 1 diverged) vs 0 of 6 with BN" in (
        text(answers(rich_study)["head"]))


def test_batch_size_compares_small_and_large(rich_study):
    sentences = text(answers(rich_study)["batch_size"])
    assert re.search(r"median is \d+\.\d\d px at batch 4-7 and \d+\.\d\d px at batch 64-128", sentences)
    assert "Spearman correlation" in sentences


def test_receptive_field_relates_to_error_per_family():
    from tests.analysis.conftest import add_trial, new_study

    study, url = new_study(None, multi=False)
    for i in range(8):  # U-Nets: the wider they see, the lower the error; ResNets: one receptive field only
        add_trial(study, "ok", kb=20, error=3.0 - 0.2 * i, family="unet", depth=3, receptive_field=12 + 8 * i)
        add_trial(study, "ok", kb=20, error=2.0 + 0.1 * i, family="resnet", depth=2, receptive_field=15)
    answer = answers((study, url))["receptive_field"]
    sentences = text(answer)
    assert ("unet: receptive fields 12-68 px of the crop's 64; Spearman rho with error -1.00" in sentences
            and "a larger receptive field goes with lower error; the best (1.60 px, trial 14) sees 68 px" in sentences)
    assert "resnet: too few trials or receptive fields to say (n=8, 1 distinct" in sentences
    assert {trace.name for trace in answer.figure.data} == {"unet", "resnet"}


def test_thin_data_says_too_few(thin_study):
    got = answers(thin_study)
    for answer in got.values():
        assert "too few" in text(answer).lower(), answer.key
        assert not re.search(r"median \d", text(answer)), answer.key
    assert f"resnet: too few trials to say (n=1, need {MIN_GROUP})" in text(got["family"])
    assert "Too few sigmoid-without-BN trials" in text(got["head"])


def test_baseline_pairs_differ_in_one_factor(rich_study):
    rows = read_trials(rich_study[0])
    assert [(a.baseline, b.baseline) for a, b in baseline_pairs(rows, "batch_norm")] == [
        ("resnet8-linear", "resnet8-linear-bn")]
    assert baseline_pairs(rows, "family") == []  # the U-Net design also changes the head


def test_progress_sentence(rich_study, thin_study):
    study, url = rich_study
    assert re.match(r"Best error within the cap: \d+\.\d\d px \(trial \d+\), reached at completed trial \d+ of 39\.",
                    progress_sentence(read_trials(study), study_info(study, url)))
    study, url = thin_study
    assert "Too few completed trials (1)" in progress_sentence(read_trials(study), study_info(study, url))
