"""PNGs of the report's plotly figures, drawn with matplotlib: no browser, nothing but pip packages.

    from analysis.png import write_png
    write_png(pareto_figure(rows, info), "pareto_size.png", width=1100, height=650)

The figures are defined once, in plotly (``analysis.figures``), for the interactive HTML report; this module
redraws the subset of plotly they use (scatter and horizontal bar traces, subplots by axis domain, log and
category axes with explicit ticks, vertical lines, text annotations) so a PNG shows the same points, lines and
labels. Anything outside that subset raises ValueError naming it, rather than drawing a figure that lies.
Plotly's own PNG export (kaleido) needs a Chrome on the machine, which a laptop or cluster node may not have.
"""
from __future__ import annotations

import re
from pathlib import Path

import plotly.graph_objects as go
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from deploy.atomic import replacing

DPI = 100
# The plot area inside the image, as figure fractions (plotly's domains are relative to it).
LEFT, BOTTOM, TOP = 0.09, 0.09, 0.86
RIGHT_WITH_LEGEND, RIGHT = 0.76, 0.97
# plotly marker symbols -> (matplotlib marker, filled)
SYMBOLS = {
    "circle": ("o", True), "circle-open": ("o", False), "star-open": ("*", False), "star": ("*", True),
    "line-ns-open": ("|", False), "x-thin-open": ("x", False), "x": ("x", True), "square": ("s", True),
    "diamond": ("D", True), "cross": ("P", True),
}
DASHES = {None: "-", "solid": "-", "dash": "--", "dot": ":", "dashdot": "-."}
TEXT_OFFSETS = {"middle right": (6, 0, "left", "center"), "middle left": (-6, 0, "right", "center"),
                "top center": (0, 6, "center", "bottom"), "bottom center": (0, -6, "center", "top")}
DEFAULT_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def plain(text: str | None) -> str:
    """Plotly's HTML-ish text as plain text: <br> becomes a line break, other tags go."""
    return re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", "\n", text or ""))


def render(fig: go.Figure, width: int = 1100, height: int = 650) -> Figure:
    """A matplotlib Figure (Agg, no pyplot state) drawing ``fig``; ValueError for an unsupported element."""
    out = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(out)
    legend = any(_in_legend(t) for t in fig.data)
    top = TOP
    if fig.layout.title.text:
        title = out.suptitle(plain(fig.layout.title.text), x=0.02, y=0.985, ha="left", va="top", fontsize=11)
        top = min(TOP, _below(out, title) - _above_panels(fig) / height)
    area = (LEFT, BOTTOM, RIGHT_WITH_LEGEND if legend else RIGHT, top)
    axes = _make_axes(out, fig, area)
    for i, trace in enumerate(fig.data):
        ax = axes[(trace.xaxis or "x", trace.yaxis or "y")]
        colour = DEFAULT_COLOURS[i % len(DEFAULT_COLOURS)]
        if trace.type == "scatter":
            _scatter(ax, trace, colour)
        elif trace.type == "bar":
            _bar(ax, trace, colour)
        else:
            raise ValueError(f"analysis.png cannot draw a {trace.type!r} trace; add it to analysis/png.py or "
                             "leave this figure out of the PNGs")
    for shape in fig.layout.shapes:
        _shape(axes, shape)
    for note in fig.layout.annotations:
        _annotation(out, fig, axes, note, area)
    _finish_axes(fig, axes)
    _fit_left(out, axes, area)
    if legend:
        _legend(out, axes, area)
    return out


def write_png(fig: go.Figure, path: str | Path, width: int = 1100, height: int = 650) -> Path:
    """Draw ``fig`` into a ``width`` x ``height`` PNG at ``path``."""
    path = Path(path)
    with replacing(path) as tmp:
        render(fig, width, height).savefig(tmp, format="png", dpi=DPI)
    return path


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write a matplotlib ``Figure`` (a benchmark's own plot) to ``path`` as PNG, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    with replacing(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


def _below(out: Figure, text) -> float:
    """The figure fraction just below ``text`` (a title of one line or several), with a small gap."""
    box = text.get_window_extent(out.canvas.get_renderer())
    return box.y0 / out.bbox.height - 0.015


def _above_panels(fig: go.Figure) -> float:
    """Pixels the texts sitting on top of the panels need (subplot titles: paper annotations at y >= 1)."""
    sizes = [(note.font.size or 12) * 0.8 for note in fig.layout.annotations
             if (note.yref or "paper") == "paper" and note.y is not None and note.y >= 1]
    return max(sizes, default=0) * 1.6


def label_points(axis, xs, ys, labels, fontsize: float = 8) -> None:
    """Name each point of a matplotlib scatter just right of it, moving a name up (with a line back to its point)
    while it would touch a name already placed, so names of close points never pile up."""
    figure = axis.figure
    figure.canvas.draw()  # the axes' final limits, so display positions hold
    height = fontsize * figure.dpi / 72 * 1.25  # a line of text, in pixels
    placed: list[tuple[float, float, float]] = []  # (left, bottom, width) of each name in pixels
    for i in sorted(range(len(xs)), key=lambda i: (ys[i], xs[i])):
        px, py = axis.transData.transform((xs[i], ys[i]))
        width = 0.62 * fontsize * figure.dpi / 72 * len(labels[i])
        left, bottom = px + 5, py + 2
        while any(left < l + w and l < left + width and bottom < b + height and b < bottom + height
                  for l, b, w in placed):
            bottom += height * 0.5
        placed.append((left, bottom, width))
        moved = bottom - (py + 2) > height * 0.4
        axis.annotate(labels[i], (xs[i], ys[i]), xytext=(left - px, bottom - py), textcoords="offset pixels",
                      fontsize=fontsize, ha="left", va="bottom",
                      arrowprops=dict(arrowstyle="-", color="#999", linewidth=0.6, shrinkA=0, shrinkB=4) if moved
                      else None)


def _axis_names(fig: go.Figure) -> list[tuple[str, str]]:
    """(x axis, y axis) pairs in use: those of the traces, shapes and annotations, or ("x", "y") if none."""
    pairs = {(t.xaxis or "x", t.yaxis or "y") for t in fig.data}
    layout = fig.layout.to_plotly_json()
    for name, axis in layout.items():
        if name.startswith("xaxis") and axis.get("anchor"):
            pairs.add(("x" + name[5:], axis["anchor"]))
    return sorted(pairs) or [("x", "y")]


def _layout_axis(fig: go.Figure, ref: str) -> dict:
    """``x2`` -> the layout's ``xaxis2`` as a dict."""
    return fig.layout.to_plotly_json().get(ref[0] + "axis" + ref[1:], {})


def _make_axes(out: Figure, fig: go.Figure, area) -> dict:
    left, bottom, right, top = area
    axes = {}
    for x, y in _axis_names(fig):
        x0, x1 = _layout_axis(fig, x).get("domain", [0, 1])
        y0, y1 = _layout_axis(fig, y).get("domain", [0, 1])
        rect = [left + x0 * (right - left), bottom + y0 * (top - bottom),
                (x1 - x0) * (right - left), (y1 - y0) * (top - bottom)]
        axes[(x, y)] = out.add_axes(rect)
    # Shared axes (make_subplots' shared_xaxes / shared_yaxes) "match" another axis: share its limits.
    for (x, y), ax in axes.items():
        for ref, share in ((x, "sharex"), (y, "sharey")):
            target = _layout_axis(fig, ref).get("matches")
            partner = next((a for (px, py), a in axes.items() if target in (px, py) and a is not ax), None)
            if partner is not None:
                (ax.sharex if share == "sharex" else ax.sharey)(partner)
    return axes


def _marker(trace, colour: str) -> dict:
    m = trace.marker
    symbol, filled = SYMBOLS.get(m.symbol or "circle", (None, None))
    if symbol is None:
        raise ValueError(f"analysis.png has no matplotlib marker for plotly symbol {m.symbol!r}; add it to SYMBOLS")
    c = m.color if isinstance(m.color, str) else colour
    size = (m.size or 6) * 0.75  # plotly: diameter in px; matplotlib: points at 100 dpi
    edge = (m.line.width or 1.5) if m.line is not None else 1.5
    return dict(marker=symbol, markersize=size, markerfacecolor=c if filled else "none", markeredgecolor=c,
                markeredgewidth=edge if not filled or symbol in "|x" else 0.5, alpha=m.opacity or 1.0)


def _scatter(ax, trace, colour: str) -> None:
    xs, ys = list(trace.x or []), list(trace.y or [])
    mode = trace.mode or "markers"
    label = trace.name if _in_legend(trace) else "_nolegend_"
    line_colour = trace.line.color or (trace.marker.color if isinstance(trace.marker.color, str) else colour)
    style = dict(linestyle="none")
    if "lines" in mode:
        style = dict(linestyle=DASHES.get(trace.line.dash, "-"), linewidth=trace.line.width or 2,
                     color=line_colour, drawstyle="steps-post" if trace.line.shape == "hv" else "default")
    marker = _marker(trace, colour) if "markers" in mode else dict(marker="none")
    ax.plot(xs, ys, label=label, **style, **marker)
    if "text" in mode and trace.text is not None:
        dx, dy, ha, va = TEXT_OFFSETS.get(trace.textposition or "middle right", TEXT_OFFSETS["middle right"])
        size = trace.textfont.size or 10
        for x, y, text in zip(xs, ys, trace.text):
            ax.annotate(plain(str(text)), (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                        fontsize=size * 0.8)


def _bar(ax, trace, colour: str) -> None:
    if trace.orientation != "h":
        raise ValueError("analysis.png draws horizontal bars only (orientation='h'); add vertical bars to it")
    values, labels = list(trace.x), [str(v) for v in trace.y]
    colours = trace.marker.color
    colours = list(colours) if isinstance(colours, (list, tuple)) else [colours or colour] * len(values)
    bars = ax.barh(labels, values, color=colours)
    if trace.text is not None:
        for bar, text in zip(bars, trace.text):
            ax.annotate(plain(str(text)), (bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(3, 0),
                        textcoords="offset points", ha="left", va="center", fontsize=8)


def _shape(axes: dict, shape) -> None:
    if shape.type != "line":
        raise ValueError(f"analysis.png draws line shapes only, got {shape.type!r}")
    x_ref, y_ref = shape.xref or "x", shape.yref or "y"
    ax = next((a for (x, y), a in axes.items() if x == x_ref.split()[0] or y == y_ref.split()[0]), None)
    if ax is None:
        return
    style = dict(color=shape.line.color or "black", linestyle=DASHES.get(shape.line.dash, "-"),
                 linewidth=shape.line.width or 1)
    if y_ref.endswith("domain") and shape.x0 == shape.x1:
        ax.axvline(shape.x0, **style)
    elif x_ref.endswith("domain") and shape.y0 == shape.y1:
        ax.axhline(shape.y0, **style)
    else:
        ax.plot([shape.x0, shape.x1], [shape.y0, shape.y1], **style)


def _annotation(out: Figure, fig: go.Figure, axes: dict, note, area) -> None:
    text = plain(note.text)
    size = (note.font.size or 12) * 0.8
    ha = {"left": "left", "right": "right"}.get(note.xanchor, "center")
    va = {"top": "top", "bottom": "bottom"}.get(note.yanchor, "center")
    x_ref, y_ref = note.xref or "paper", note.yref or "paper"
    if x_ref == "paper" and y_ref == "paper":
        left, bottom, right, top = area
        # Subplot titles sit just above their panel (yanchor bottom); others where they are placed.
        out.text(left + note.x * (right - left), bottom + note.y * (top - bottom), text, ha=ha,
                 va="bottom" if note.yanchor == "bottom" else va, fontsize=size)
        return
    ax = next(a for (x, y), a in axes.items() if x == x_ref.split()[0] and y == y_ref.split()[0])
    # On a log axis plotly places annotations at log10 of the value.
    log_x = _layout_axis(fig, x_ref.split()[0]).get("type") == "log" and not x_ref.endswith("domain")
    log_y = _layout_axis(fig, y_ref.split()[0]).get("type") == "log" and not y_ref.endswith("domain")
    x = 10 ** note.x if log_x else note.x
    if note.showarrow and note.axref == x_ref and note.ayref == y_ref:
        # The text at (ax, ay) in data coordinates, a line from it to the point (x, y): a leader line.
        y = 10 ** note.y if log_y else note.y
        tail = (10 ** note.ax if log_x else note.ax, 10 ** note.ay if log_y else note.ay)
        ax.annotate(text, (x, y), xytext=tail, textcoords="data", ha=ha, va="center", fontsize=size,
                    arrowprops=dict(arrowstyle="-", color=note.arrowcolor or "#777", linewidth=note.arrowwidth or 1,
                                    shrinkA=2, shrinkB=6))
        return
    if note.showarrow:
        raise ValueError("analysis.png draws arrows only from text placed in the same axes' data coordinates "
                         "(axref, ayref); add other arrows to analysis/png.py")
    transform = ax.get_xaxis_transform() if y_ref.endswith("domain") else ax.transData
    ax.annotate(text, (x, note.y), xycoords=transform, xytext=(note.xshift or 0, note.yshift or 0),
                textcoords="offset points", ha=ha, va=va, fontsize=size)


def _finish_axes(fig: go.Figure, axes: dict) -> None:
    for (x, y), ax in axes.items():
        for ref, axis in ((x, ax.xaxis), (y, ax.yaxis)):
            spec = _layout_axis(fig, ref)
            setter = ax.set_xscale if axis is ax.xaxis else ax.set_yscale
            if spec.get("type") == "log":
                setter("log")
                axis.set_minor_locator(NullLocator())  # plotly shows no minor ticks
            if spec.get("tickvals") is not None:
                # Plotly shows only the ticks inside the data's range; matplotlib would widen the range to all.
                limits = (ax.get_xlim if axis is ax.xaxis else ax.get_ylim)()
                axis.set_ticks(list(spec["tickvals"]), labels=list(spec.get("ticktext") or spec["tickvals"]))
                (ax.set_xlim if axis is ax.xaxis else ax.set_ylim)(*limits)
            if spec.get("range") is not None:  # plotly gives a log axis's range in log10 units
                low, high = spec["range"]
                if spec.get("type") == "log":
                    low, high = 10 ** low, 10 ** high
                (ax.set_xlim if axis is ax.xaxis else ax.set_ylim)(low, high)
            title = (spec.get("title") or {}).get("text")
            if title:
                (ax.set_xlabel if axis is ax.xaxis else ax.set_ylabel)(plain(title))
            if spec.get("showticklabels") is False:
                axis.set_tick_params(labelbottom=False, labelleft=False)
            if spec.get("visible") is False:
                axis.set_visible(False)
        if _layout_axis(fig, x).get("visible") is False and _layout_axis(fig, y).get("visible") is False:
            ax.set_axis_off()
        ax.grid(True, color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.tick_params(labelsize=8)


def _fit_left(out: Figure, axes: dict, area) -> None:
    """Move the panels right until the longest y labels (category names, parameter names) fit in the image."""
    renderer = out.canvas.get_renderer()
    spans = [ax.get_tightbbox(renderer) for ax in axes.values() if ax.axison]
    if not spans:
        return
    overflow = 0.01 - min(span.x0 for span in spans) / out.bbox.width
    if overflow <= 0:
        return
    left, _, right, _ = area
    squeeze = (right - left - overflow) / (right - left)
    for ax in axes.values():
        pos = ax.get_position()
        ax.set_position([left + overflow + (pos.x0 - left) * squeeze, pos.y0, pos.width * squeeze, pos.height])


def _legend(out: Figure, axes: dict, area) -> None:
    handles, labels = [], []
    for ax in axes.values():
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if handles:
        out.legend(handles, labels, loc="upper left", bbox_to_anchor=(area[2] + 0.01, area[3]), fontsize=8,
                   frameon=False)


def _in_legend(trace) -> bool:
    """A named scatter trace with at least one point: the legend names only what the plot shows."""
    shown = any(x is not None and y is not None for x, y in zip(trace.x or (), trace.y or ()))
    return trace.showlegend is not False and bool(trace.name) and trace.type == "scatter" and shown

