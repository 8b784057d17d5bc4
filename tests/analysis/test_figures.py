import math
import random

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution

from analysis.figures import history_figure, importance_figure, pareto_figure
from analysis.importances import param_importances
from analysis.study_data import read_trials, study_info


@pytest.fixture(scope="module")
def hand_study(small_storage, build, multi):
    """Completed trials at (KB, px) (10, 5), (20, 3), (20, 4), (30, 3), (40, 2); a stopped trial below the front;
    the hand designs; an oversize and a diverged trial."""
    study, url = build.new_study(small_storage, multi, name="hand")
    for kb, error in [(10, 5.0), (20, 3.0), (20, 4.0), (30, 3.0), (40, 2.0)]:
        build.add_trial(study, "ok", kb=kb, error=error, macs=int(kb * 1000))
    build.add_trial(study, "stopped", kb=15, error=2.5)
    build.add_trial(study, "oversize", kb=120)
    build.add_trial(study, "diverged", kb=25)
    build.add_baselines(study)  # (30, 4.1), (30, 3.2), (40, 2.9): all dominated
    return read_trials(study), study_info(study, url)


def traces(fig):
    return {t.name: t for t in fig.data}


def test_pareto_trace_is_the_hand_computed_front(hand_study):
    rows, info = hand_study
    front = traces(pareto_figure(rows, info, "size"))["Pareto front (3 trials)"]
    assert list(front.x) == [10, 20, 40]
    assert list(front.y) == [5.0, 3.0, 2.0]
    assert front.line.shape == "hv"


def test_pareto_against_macs(hand_study):
    rows, info = hand_study
    front = traces(pareto_figure(rows, info, "macs"))["Pareto front (3 trials)"]
    assert list(front.x) == [10_000, 20_000, 40_000]


def test_every_trial_is_drawn_and_kinds_are_apart(hand_study):
    rows, info = hand_study
    t = traces(pareto_figure(rows, info, "size"))
    assert len(t["resnet (complete)"].x) == 7  # five plus the two resnet hand designs
    assert len(t["unet (complete)"].x) == 1
    assert list(t["stopped early (partial training)"].x) == [15]
    assert list(t["oversize (not trained)"].x) == [120]
    assert list(t["diverged"].x) == [25]
    assert sorted(t["hand designs"].y) == [2.9, 3.2, 4.1]


def test_hand_designs_are_named_in_a_column_right_of_the_cap_with_no_two_names_touching(hand_study):
    rows, info = hand_study
    fig = pareto_figure(rows, info, "size")
    names = [a for a in fig.layout.annotations if a.showarrow]
    # Each name's leader line ends at its star; the names are ordered as the stars, lowest error at the bottom.
    assert [a.text for a in names] == ["unet8-softmax-bn", "resnet8-linear-bn", "resnet8-linear"]
    assert [10 ** a.y for a in names] == pytest.approx([2.9, 3.2, 4.1])
    x_low, x_high = fig.layout.xaxis2.range
    y_low, y_high = fig.layout.yaxis2.range
    assert all(math.log10(80) < a.ax < x_high for a in names)  # right of the cap, inside the panel
    ys = [a.ay for a in names]
    assert all(y_low < y < y_high for y in ys)
    assert min(b - a for a, b in zip(ys, ys[1:])) >= 0.045 * (y_high - y_low) - 1e-9


def test_cap_is_drawn_on_the_size_figure(hand_study):
    rows, info = hand_study
    fig = pareto_figure(rows, info, "size")
    assert {s.x0 for s in fig.layout.shapes} == {80}
    assert not pareto_figure(rows, info, "macs").layout.shapes


def test_history_best_line_steps_down(hand_study):
    rows, info = hand_study
    by_number, by_time = [t for t in history_figure(rows, info).data if t.name == "best within the cap"]
    # Improvements at trials 0, 1 and 4, extended to the last completed trial (hand design 10).
    assert list(by_number.x) == [0, 1, 4, 10]
    assert list(by_number.y) == [5.0, 3.0, 2.0, 2.0]
    assert list(by_time.y) == [5.0, 3.0, 2.0, 2.0]


def test_importances_rate_every_parameter(rich_study):
    study, _ = rich_study
    imp = param_importances(study, min_trials=10)
    assert set(imp.by_evaluator) == {"PED-ANOVA", "fANOVA"}
    for scores in imp.by_evaluator.values():
        assert {"family", "width", "depth", "batch_norm", "head", "optimizer", "lr", "batch_size",
                "weight_decay", "sigma", "loss", "expand", "momentum"} == set(scores)
    fig = importance_figure(imp, 10)
    assert [t.name for t in fig.data] == ["PED-ANOVA", "fANOVA"]
    assert "expand (within its 12 trials)" in fig.data[0].y  # the 12 mobile trials


def test_importances_on_thin_data_say_so(thin_study):
    study, _ = thin_study
    fig = importance_figure(param_importances(study, min_trials=10), 10)
    assert not fig.data
    assert "Too few completed trials" in fig.layout.annotations[0].text


def test_a_parameter_one_evaluator_cannot_rate_is_shown_as_not_rated():
    # width's range differs between families (as in a real search): fANOVA cannot rate it, PED-ANOVA can.
    study = optuna.create_study()
    rng = random.Random(0)
    for i in range(24):
        high = 16 if i % 2 else 32
        width, lr = rng.randint(4, high), 10 ** rng.uniform(-4, -2)
        study.add_trial(optuna.trial.create_trial(
            params={"width": width, "lr": lr}, value=width * 0.1 + lr * 100,
            distributions={"width": IntDistribution(4, high), "lr": FloatDistribution(1e-4, 1e-2, log=True)}))
    imp = param_importances(study, min_trials=10)
    assert "width" in imp.by_evaluator["PED-ANOVA"] and "width" not in imp.by_evaluator["fANOVA"]
    assert imp.unrated == {"width": "fANOVA cannot: its range differs between trials"}
    fig = importance_figure(imp, 10)
    fanova = next(t for t in fig.data if t.name == "fANOVA")
    assert dict(zip(fanova.y, fanova.text))["width (within its 24 trials)"] == "not rated"
    assert "not rated: width (fANOVA cannot" in fig.layout.title.text


def test_each_importance_panel_is_sorted_most_important_on_top(rich_study):
    study, _ = rich_study
    imp = param_importances(study, min_trials=10)
    for trace in importance_figure(imp, 10).data:
        rated = [value for value, text in zip(trace.x, trace.text) if text != "not rated"]
        assert rated == sorted(rated)  # plotly draws the first bar at the bottom
        assert all(text != "not rated" for text in trace.text[len(trace.text) - len(rated):])


def test_history_without_a_trial_within_the_cap_draws_no_best_line(small_storage, build, multi):
    study, url = build.new_study(small_storage, multi, name="over-cap")
    build.add_trial(study, "ok", kb=90, error=3.0)  # completed, but over the 80 KB cap
    fig = history_figure(read_trials(study), study_info(study, url))
    assert "best within the cap" not in {t.name for t in fig.data}
