import plotly.graph_objects as go
import pytest

from analysis.figures import history_figure, importance_figure, message_figure, pareto_figure
from analysis.importances import param_importances
from analysis.png import plain, render, write_png
from analysis.study_data import read_trials, study_info
from tests.analysis.test_report import png_size


@pytest.fixture(scope="module")
def rich_rows(rich_study):
    study, url = rich_study
    return read_trials(study), study_info(study, url)


def lines_by_label(out) -> dict:
    return {line.get_label(): line for ax in out.axes for line in ax.get_lines()}


def test_pareto_png_draws_the_plotly_traces_points(rich_rows):
    rows, info = rich_rows
    fig = pareto_figure(rows, info, "size")
    lines = lines_by_label(render(fig))
    for trace in fig.data:
        line = lines[trace.name]
        assert list(line.get_xdata()) == list(trace.x), trace.name
        assert list(line.get_ydata()) == list(trace.y), trace.name
    front = next(t for t in fig.data if t.name.startswith("Pareto front"))
    assert lines[front.name].get_drawstyle() == "steps-post"  # plotly's shape="hv"


def test_pareto_png_axes_are_log_with_the_cap_and_the_strip(rich_rows):
    rows, info = rich_rows
    strip, main = render(pareto_figure(rows, info, "size")).axes
    assert (main.get_xscale(), main.get_yscale()) == ("log", "log")
    assert main.get_xlim() == strip.get_xlim()  # shared x, as in plotly
    assert [v for line in main.get_lines() if line.get_linestyle() == "--" for v in line.get_xdata()] == [80, 80]
    assert "cap 80 KB" in [t.get_text() for t in main.texts]
    assert {t.get_text() for t in strip.get_yticklabels()} >= {"oversize (not trained)", "diverged"}
    # Ticks labelled in full, and the axis spans the data, not every tick (matplotlib would widen it to all).
    assert "20" in [t.get_text() for t in main.get_yticklabels()]
    errors = [r.error for r in rows if r.error is not None]
    low, high = main.get_ylim()
    assert 0.5 * min(errors) < low <= min(errors) and max(errors) <= high < 2 * max(errors)


def test_importance_png_has_a_panel_per_evaluator_with_every_parameter(rich_study):
    study, _ = rich_study
    fig = importance_figure(param_importances(study, min_trials=10), 10)
    out = render(fig)
    assert [ax.patches.__len__() for ax in out.axes] == [len(fig.data[0].x)] * 2
    widths = [bar.get_width() for bar in out.axes[0].patches]
    assert widths == pytest.approx(list(fig.data[0].x))
    texts = {t.get_text() for t in out.texts}
    assert {"PED-ANOVA", "fANOVA"} <= texts  # the subplot titles


def test_history_png_steps_down(rich_rows):
    rows, info = rich_rows
    fig = history_figure(rows, info)
    best = [t for t in fig.data if t.name == "best within the cap"]
    lines = [line for ax in render(fig).axes for line in ax.get_lines() if line.get_drawstyle() == "steps-post"]
    assert [list(line.get_ydata()) for line in lines] == [list(t.y) for t in best]


def test_message_figure_says_why(tmp_path):
    out = render(message_figure("Optimisation history", "No completed trial yet."))
    assert "No completed trial yet." in [t.get_text() for t in out.texts]
    assert not any(ax.axison for ax in out.axes)
    assert png_size(write_png(message_figure("t", "m"), tmp_path / "m.png", width=400, height=300)) == (400, 300)


def test_a_trace_it_cannot_draw_is_named():
    with pytest.raises(ValueError, match="cannot draw a 'box' trace"):
        render(go.Figure(go.Box(y=[1, 2, 3])))


def test_plain_text_keeps_line_breaks_and_drops_tags():
    assert plain("Title<br><sup>39 trials</sup>") == "Title\n39 trials"
