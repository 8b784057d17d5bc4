import plotly.graph_objects as go
from matplotlib.text import Text
import pytest

from analysis.figures import history_figure, importance_figure, message_figure, pareto_figure
from analysis.importances import Importances, param_importances
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


def _boxes(out, texts):
    """(text, its box in pixels) of each visible text; an annotation's box without its leader line."""
    out.canvas.draw()  # lay out as savefig does: the panels moved after the texts were placed
    renderer = out.canvas.get_renderer()
    return [(t.get_text(), Text.get_window_extent(t, renderer)) for t in texts
            if t.get_visible() and t.get_text().strip()]


# The 200-trial shared-data study's importances: a four-line title over two panels.
REAL_IMPORTANCES = Importances(
    n_complete=59,
    by_evaluator={"PED-ANOVA": {"lr": 0.34, "batch_size": 0.29, "batch_norm": 0.0, "sigma": 0.24, "loss": 0.0,
                                "width": 0.19, "head": 0.01, "weight_decay": 0.06, "optimizer": 0.04, "family": 0.02,
                                "depth": 0.03},
                  "fANOVA": {"lr": 0.43, "batch_size": 0.16, "batch_norm": 0.32, "sigma": 0.0, "loss": 0.21,
                             "head": 0.06, "weight_decay": 0.0, "optimizer": 0.01, "family": 0.02}},
    conditional={"loss": 51, "width": 59, "depth": 59},
    unrated={"depth": "fANOVA cannot: its range differs between trials",
             "width": "fANOVA cannot: its range differs between trials",
             "expand": "in 1 completed trials, need 10", "momentum": "in 4 completed trials, need 10"})


@pytest.fixture(scope="module")
def crowded_rows(small_storage, build, multi):
    """The eight hand designs of the original study, as the shared-data search placed them: close together
    just under the 80 KB cap, their names longer than the gaps between them."""
    study, url = build.new_study(small_storage, multi, name="crowded")
    for name, kb, error in [("resnet8-linear", 76.1, 26.0), ("resnet8-linear-bn", 76.1, 27.5),
                            ("resnet8-softmax", 76.1, 29.5), ("resnet8-softmax-bn", 76.1, 13.0),
                            ("unet8-linear", 69.0, 33.0), ("unet8-linear-bn", 69.0, 28.0),
                            ("unet8-softmax", 69.0, 42.8), ("unet8-softmax-bn", 69.0, 11.3)]:
        build.add_trial(study, "ok", kb=kb, error=error, baseline=name)
    for kb, error in [(53.0, 1.5), (40.0, 1.7), (9.5, 12.0), (53.0, 3.0), (71.9, 1.8)]:
        build.add_trial(study, "ok", kb=kb, error=error, family="unet")
    build.add_trial(study, "stopped", kb=53.0, error=20.0)
    return read_trials(study), study_info(study, url)


def test_no_text_overlaps_or_leaves_the_image(rich_rows, crowded_rows):
    figures = [importance_figure(REAL_IMPORTANCES, 10)]
    for rows, info in (rich_rows, crowded_rows):
        figures += [pareto_figure(rows, info, "size"), pareto_figure(rows, info, "macs"), history_figure(rows, info)]
    for fig in figures:
        out = render(fig)
        # The title (four lines on the importance figure), the subplot titles and every annotation
        boxes = _boxes(out, [*out.texts, *[t for ax in out.axes for t in ax.texts]])
        for i, (text, box) in enumerate(boxes):
            assert 0 <= box.x0 and box.x1 <= out.bbox.width and 0 <= box.y0 and box.y1 <= out.bbox.height, text
            for other, other_box in boxes[i + 1:]:
                assert not box.overlaps(other_box), (text, other)
        # Every hand design's name lies inside its panel, where the plot area would not clip it.
        for ax in out.axes:
            panel = ax.get_window_extent()
            for text, box in _boxes(out, ax.texts):
                assert panel.x0 <= box.x0 and box.x1 <= panel.x1 and panel.y0 <= box.y0 and box.y1 <= panel.y1, text


def test_the_legend_names_only_what_the_plot_shows():
    fig = go.Figure([go.Scatter(x=[1, 2], y=[1, 2], name="shown"), go.Scatter(x=[], y=[], name="empty")])
    labels = [t.get_text() for t in render(fig).legends[0].get_texts()]
    assert labels == ["shown"]


def test_names_of_close_points_are_moved_apart():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from analysis.png import label_points

    figure = Figure(figsize=(6, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    # The search-ranking study's four near-ties (docs/results.md) and a point apart.
    xs, ys = [1.614, 1.617, 1.627, 1.629, 2.674], [1.649, 1.550, 1.676, 1.750, 3.269]
    axis.scatter(xs, ys)
    label_points(axis, xs, ys, ["#23", "#25", "#28", "#31", "#6"])
    boxes = _boxes(figure, axis.texts)
    assert sorted(text for text, _ in boxes) == ["#23", "#25", "#28", "#31", "#6"]
    for i, (text, box) in enumerate(boxes):
        for other, other_box in boxes[i + 1:]:
            assert not box.overlaps(other_box), (text, other)
