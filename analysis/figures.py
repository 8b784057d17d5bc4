"""Plotly figures of a study: Pareto fronts, parameter importances, optimisation history.

Each function takes the rows of ``analysis.study_data.read_trials`` (or computed importances) and returns a
``plotly.graph_objects.Figure``; nothing here reads a storage or trains.
"""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.importances import Importances
from analysis.pareto import pareto_front
from analysis.study_data import StudyInfo, TrialRow
from studies.reader import study_weights

FAMILY_COLOURS = {"resnet": "#1f77b4", "unet": "#ff7f0e", "mobile": "#2ca02c"}
OTHER_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
FRONT_COLOUR = "#d62728"
# The Pareto plot's main panel is about this wide (the report's PNGs, plotly's default width with the legend),
# and a hand design's name about this wide per character: room for the names right of the points.
PANEL_PX, PX_PER_CHAR = 720, 7
NO_ERROR_ROWS = {"oversize": "oversize (not trained)", "diverged": "diverged", "failed": "failed (crashed)",
                 "no error": "no error recorded"}
AXES = {
    "size": ("weight size (KB, {weights})", lambda r: r.size_kb),  # the study's weight format
    "macs": ("multiply-accumulates per crop", lambda r: None if r.macs is None else float(r.macs)),
}


def family_colour(family: str | None, families: list[str]) -> str:
    if family in FAMILY_COLOURS:
        return FAMILY_COLOURS[family]
    others = [f for f in families if f not in FAMILY_COLOURS]
    return OTHER_COLOURS[others.index(family) % len(OTHER_COLOURS)] if family in others else "#7f7f7f"


def log_ticks(values, si: bool = False) -> dict:
    """Tick positions for a log axis, labelled in full (plotly's own log ticks label 20 and 30 as "2" and
    "3"): 1, 2, 3, 5 per decade, finer when the values span too little of a decade to show three of those."""
    finite = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not finite:
        return {}
    lo, hi = min(finite), max(finite)
    low, high = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for mantissas in ((1, 2, 3, 5), (1, 1.5, 2, 3, 4, 5, 6, 8), tuple(1 + i / 10 for i in range(90))):
        ticks = [m * 10.0**e for e in range(low, high + 1) for m in mantissas]
        if sum(lo <= t <= hi for t in ticks) >= 3:
            break
    else:  # all values (nearly) equal: label them
        ticks = sorted({float(f"{v:.3g}") for v in (lo, hi)})
    return dict(tickvals=ticks, ticktext=[_si(t) if si else f"{t:g}" for t in ticks])


def _si(v: float) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= factor:
            return f"{v / factor:g}{suffix}"
    return f"{v:g}"


def message_figure(title: str, message: str) -> go.Figure:
    """A figure with no data that says why (too few trials, nothing to draw)."""
    fig = go.Figure()
    fig.update_layout(
        title=title,
        xaxis_visible=False,
        yaxis_visible=False,
        annotations=[dict(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font_size=16)],
        height=300,
    )
    return fig


def _hover(r: TrialRow) -> str:
    parts = [f"trial {r.number}" + (f" ({r.baseline})" if r.baseline else ""), r.label()]
    if r.error is not None:
        parts.append(f"{r.error:.2f} px")
    if r.size_kb is not None:
        parts.append(f"{r.size_kb:.1f} KB")
    if r.macs is not None:
        parts.append(f"{r.macs / 1e6:.2f} M MACs")
    parts.append(r.outcome + (f": {r.reason}" if r.reason else ""))
    return "<br>".join(parts)


def pareto_figure(rows: list[TrialRow], info: StudyInfo, x: str = "size") -> go.Figure:
    """Validation error against weight size (``x="size"``) or MACs (``x="macs"``), every finished trial drawn.

    Trained trials sit in the main panel; trials without an error (oversize, never trained; diverged) sit in a
    strip above it at their x. The front joins the non-dominated completed trials within the size cap.
    """
    if x not in AXES:
        raise ValueError(f"x must be one of {sorted(AXES)}, got {x!r}")
    x_title, x_of = AXES[x]
    x_title = x_title.format(weights=study_weights(info))  # StudyInfo carries the study's user_attrs
    drawn = [r for r in rows if r.outcome != "unfinished" and x_of(r) is not None]
    if not drawn:
        return message_figure(f"Error vs {x}", f"No finished trial records its {x} yet.")

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.16, 0.84], vertical_spacing=0.03)
    trained = [r for r in drawn if r.error is not None]
    _add_trained(fig, trained, sorted({r.family or "?" for r in drawn}), x_of)
    candidates = [r for r in trained if r.feasible(info.max_bytes)]
    _add_front(fig, candidates, x_of)
    _add_baselines(fig, trained, x_of)
    _add_no_error_strip(fig, drawn, x_of)
    _pareto_axes(fig, drawn, trained, info, x, x_title, x_of)

    n_missing = sum(r.outcome != "unfinished" and x_of(r) is None for r in rows)
    note = f"; {n_missing} finished trials without a {x} are not drawn" if n_missing else ""
    fig.update_layout(
        title=f"Validation error vs {'weight size' if x == 'size' else 'MACs'}: {len(drawn)} trials, "
              f"Pareto front among {len(candidates)} completed trials within the cap{note}",
        legend=dict(orientation="v", x=1.01, y=1),
        height=620,
    )
    return fig


def _add_trained(fig: go.Figure, trained: list[TrialRow], families: list[str], x_of) -> None:
    """The main panel's points: completed trials by family, then the ones stopped early."""
    for family in families:
        group = [r for r in trained if r.outcome == "ok" and (r.family or "?") == family]
        if group:
            fig.add_trace(_points(group, x_of, f"{family} (complete)", dict(
                color=family_colour(family, families), size=8, opacity=0.75)), row=2, col=1)
    stopped = [r for r in trained if r.outcome != "ok"]
    if stopped:
        fig.add_trace(_points(stopped, x_of, "stopped early (partial training)", dict(
            color="#7f7f7f", size=7, symbol="circle-open")), row=2, col=1)


def _add_front(fig: go.Figure, candidates: list[TrialRow], x_of) -> None:
    """The Pareto front of ``candidates`` (the feasible trained trials), joined as steps."""
    front = [candidates[i] for i in pareto_front([x_of(r) for r in candidates], [r.error for r in candidates])]
    if front:
        trace = _points(front, x_of, f"Pareto front ({len(front)} trials)", dict(color=FRONT_COLOUR, size=10))
        trace.update(mode="lines+markers", line=dict(color=FRONT_COLOUR, shape="hv", width=2))
        fig.add_trace(trace, row=2, col=1)


def _add_baselines(fig: go.Figure, trained: list[TrialRow], x_of) -> None:
    """The hand designs, as stars over the trials' points (named by ``_label_baselines``)."""
    baselines = [r for r in trained if r.baseline]
    if baselines:
        fig.add_trace(_points(baselines, x_of, "hand designs", dict(
            color="black", size=15, symbol="star-open", line=dict(width=2))), row=2, col=1)


def _label_baselines(fig: go.Figure, trained: list[TrialRow], x_of, x_right: float, x_left: float,
                     y_range: tuple[float, float]) -> float:
    """Name each hand design in a column right of ``x_right`` (the cap, or the rightmost point), spread so no two
    names touch, each joined to its star by a leader line: the names would pile up on the stars, which sit
    close together near the cap. Returns the log10 x the axis must reach (from ``x_left``) for the names to fit
    in a panel of about ``PANEL_PX`` pixels."""
    baselines = sorted((r for r in trained if r.baseline), key=lambda r: r.error)
    if not baselines:
        return math.log10(x_right)
    low, high = y_range
    gap = 0.045 * (high - low)  # about one line of text on the panel
    top = high - 0.09 * (high - low)  # below the cap's label
    ys = [math.log10(r.error) for r in baselines]
    for i in range(1, len(ys)):  # push up until no two names are closer than a line ...
        ys[i] = max(ys[i], ys[i - 1] + gap)
    if ys[-1] > top:  # ... and down again from the top when the column ran out of room
        ys[-1] = top
        for i in range(len(ys) - 2, -1, -1):
            ys[i] = min(ys[i], ys[i + 1] - gap)
    x_label = math.log10(x_right) + 0.02 * (math.log10(x_right) - x_left)
    for r, y in zip(baselines, ys):
        fig.add_annotation(x=math.log10(x_of(r)), y=math.log10(r.error), xref="x2", yref="y2", text=r.baseline,
                           showarrow=True, arrowhead=0, arrowwidth=1, arrowcolor="#777", ax=x_label, ay=y,
                           axref="x2", ayref="y2", xanchor="left", font=dict(size=11))
    share = min(0.5, (PX_PER_CHAR * max(len(r.baseline) for r in baselines) + 12) / PANEL_PX)  # of the panel
    return x_left + (x_label - x_left) / (1 - share)


def _add_no_error_strip(fig: go.Figure, drawn: list[TrialRow], x_of) -> None:
    """The strip above the main panel: one row of marks per kind of trial without an error."""
    for key, name in NO_ERROR_ROWS.items():
        group = [r for r in drawn if r.error is None and _no_error_kind(r) == key]
        if group:
            fig.add_trace(go.Scatter(
                x=[x_of(r) for r in group], y=[name] * len(group), mode="markers", name=name,
                marker=dict(symbol="line-ns-open" if key == "oversize" else "x-thin-open", size=14,
                            color="#d62728" if key == "diverged" else "#444", line=dict(width=2)),
                customdata=[r.number for r in group], hovertext=[_hover(r) for r in group], hoverinfo="text",
            ), row=1, col=1)


def _pareto_axes(fig: go.Figure, drawn: list[TrialRow], trained: list[TrialRow], info: StudyInfo, x: str,
                 x_title: str, x_of) -> None:
    """Log axes labelled in full, the strip's categories, on the size figure the cap as a dashed line, and the
    hand designs' names in a column at the right, inside the axes' range."""
    xs = [v for v in [x_of(r) for r in drawn] + ([info.max_kb] if x == "size" else []) if v > 0]  # a log axis
    errors = [r.error for r in trained if r.error > 0]
    pad = 0.05 * max(math.log10(max(errors) / min(errors)), 0.1) if errors else 0
    y_range = (math.log10(min(errors)) - pad, math.log10(max(errors)) + pad) if errors else (0, 1)
    if x == "size":
        fig.add_vline(x=info.max_kb, line=dict(color="black", dash="dash", width=1.5), row="all", col=1)
        fig.add_annotation(x=math.log10(info.max_kb), y=1, xref="x2", yref="y2 domain", text=f"cap {info.max_kb:g} KB",
                           showarrow=False, xanchor="left", yanchor="top", xshift=4)
    x_low, x_high = math.log10(min(xs)), math.log10(max(xs))
    left = x_low - 0.04 * max(x_high - x_low, 0.3)
    right = max(x_high + 0.04 * max(x_high - x_low, 0.3),
                _label_baselines(fig, trained, x_of, max([x_of(r) for r in trained] + [info.max_kb] * (x == "size")),
                                 left, y_range) if errors else x_high)
    x_ticks = log_ticks(xs, si=x == "macs")
    x_range = [left, right]
    fig.update_xaxes(type="log", range=x_range, **x_ticks, row=1, col=1)
    fig.update_xaxes(type="log", range=x_range, title_text=x_title, **x_ticks, row=2, col=1)
    fig.update_yaxes(type="category", row=1, col=1)
    fig.update_yaxes(type="log", title_text="validation mean error (px)", **log_ticks(errors), row=2, col=1)
    if errors:
        fig.update_yaxes(range=list(y_range), row=2, col=1)


def _points(rows: list[TrialRow], x_of, name: str, marker: dict) -> go.Scatter:
    return go.Scatter(
        x=[x_of(r) for r in rows], y=[r.error for r in rows], mode="markers", name=name, marker=marker,
        customdata=[r.number for r in rows], hovertext=[_hover(r) for r in rows], hoverinfo="text",
    )


def _no_error_kind(r: TrialRow) -> str:
    return r.outcome if r.outcome in NO_ERROR_ROWS else "no error"


def importance_figure(imp: Importances, min_trials: int) -> go.Figure:
    """Horizontal bars per evaluator, each panel sorted by its own importances (most important on top)."""
    title = "Parameter importance for the validation error"
    if not imp.enough:
        return message_figure(title, f"Too few completed trials to rate parameters: {imp.n_complete}, "
                                     f"need at least {min_trials}.")
    names = list(imp.by_evaluator)
    params = sorted({p for scores in imp.by_evaluator.values() for p in scores})
    label = {p: f"{p} (within its {imp.conditional[p]} trials)" if p in imp.conditional else p for p in params}
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.25)
    for col, name in enumerate(names, start=1):
        scores = imp.by_evaluator[name]
        # plotly draws the first bar at the bottom: least important first, parameters it could not rate below all
        order = sorted(params, key=lambda p: (p in scores, scores.get(p, 0.0)))
        fig.add_trace(go.Bar(
            x=[scores.get(p, 0.0) for p in order], y=[label[p] for p in order], orientation="h", name=name,
            showlegend=False, marker_color=["#9ecae1" if p in imp.conditional else "#3182bd" for p in order],
            text=[f"{scores[p]:.2f}" if p in scores else "not rated" for p in order],
            textposition="outside", cliponaxis=False,
        ), row=1, col=col)
        fig.update_xaxes(title_text="importance (share)", range=[0, 1.15], row=1, col=col)
        fig.update_yaxes(type="category", row=1, col=col)
    by_reason: dict[str, list[str]] = {}
    for param, why in sorted(imp.unrated.items()):
        by_reason.setdefault(why, []).append(param)
    lines = [f"{imp.n_complete} completed trials"] + [f"not rated: {', '.join(ps)} ({why})"
                                                       for why, ps in by_reason.items()]
    fig.update_layout(title=dict(text=f"{title}<br><sup>{'<br>'.join(lines)}</sup>", yref="container", y=0.95,
                                 yanchor="top"),
                      margin=dict(t=70 + 22 * len(lines)), height=max(350, 40 * len(params) + 150 + 22 * len(lines)))
    return fig


def history_figure(rows: list[TrialRow], info: StudyInfo) -> go.Figure:
    """Each completed trial's error and the best feasible error so far, by trial number and by wall time."""
    done = sorted((r for r in rows if r.completed_ok and r.completed is not None), key=lambda r: r.number)
    if not done:
        return message_figure("Optimisation history", "No completed trial yet.")
    t0 = min(r.started or r.completed for r in rows if (r.started or r.completed) is not None)
    span = max((r.completed - t0).total_seconds() for r in done)
    unit, seconds = ("hours", 3600) if span >= 2 * 3600 else ("minutes", 60)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=["by trial number", "by wall time"])
    for col, x_of, x_title in (
        (1, lambda r: r.number, "trial number"),
        (2, lambda r: (r.completed - t0).total_seconds() / seconds, f"{unit} since the study started"),
    ):
        ordered = sorted(done, key=x_of)
        fig.add_trace(go.Scatter(
            x=[x_of(r) for r in ordered], y=[r.error for r in ordered], mode="markers", name="completed trial",
            marker=dict(color="#9ecae1", size=6), showlegend=col == 1, legendgroup="trial",
            customdata=[r.number for r in ordered], hovertext=[_hover(r) for r in ordered], hoverinfo="text",
        ), row=1, col=col)
        xs, ys = best_so_far(ordered, x_of, info.max_bytes)
        if not xs:  # no completed trial within the cap: nothing to draw, so nothing in the legend
            fig.update_xaxes(title_text=x_title, row=1, col=col)
            continue
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines", line=dict(color=FRONT_COLOUR, shape="hv", width=2),
            name="best within the cap", showlegend=col == 1, legendgroup="best",
        ), row=1, col=col)
        fig.update_xaxes(title_text=x_title, row=1, col=col)
    fig.update_yaxes(type="log", **log_ticks([r.error for r in done]))
    fig.update_yaxes(title_text="validation mean error (px)", row=1, col=1)
    fig.update_layout(title=f"Optimisation history: {len(done)} completed trials", height=450)
    return fig


def best_so_far(ordered: list[TrialRow], x_of, max_bytes: int) -> tuple[list[float], list[float]]:
    """Step points of the running best feasible error, one per improvement, extended to the last x."""
    xs, ys, best = [], [], math.inf
    for r in ordered:
        if r.feasible(max_bytes) and r.error < best:
            best = r.error
            xs.append(x_of(r))
            ys.append(best)
    if xs and ordered and x_of(ordered[-1]) != xs[-1]:
        xs.append(x_of(ordered[-1]))
        ys.append(best)
    return xs, ys
