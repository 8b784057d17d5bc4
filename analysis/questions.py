"""The original study's questions, answered from this study's own trials with numbers and a plot each.

Comparisons use completed trials that ran every epoch (trials stopped early saw a smaller budget), and the
hand-design baselines that differ in exactly one factor. A group with fewer than ``MIN_GROUP`` trials is
reported as too thin rather than guessed at.

    from analysis.questions import answer_all
    for answer in answer_all(rows, info):
        print(answer.title, *answer.sentences)
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable

import plotly.graph_objects as go
from scipy.stats import spearmanr

from analysis.figures import family_colour, log_ticks, message_figure
from analysis.study_data import StudyInfo, TrialRow, full_budget, row_trial
from search_engine.fair_share import BATCH_BINS, MIN_COMPLETE, batch_bin
from studies.reader import best_feasible

MIN_GROUP = MIN_COMPLETE  # the search's fair exploration fills every group to this many
COLLAPSE_PCK3 = 0.1  # a run that puts fewer than 10 % of keypoints within 3 px has collapsed




@dataclass(frozen=True)
class Answer:
    key: str
    title: str
    sentences: tuple[str, ...]
    figure: go.Figure


@dataclass(frozen=True)
class GroupStats:
    name: str
    errors: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.errors)

    @property
    def enough(self) -> bool:
        return self.n >= MIN_GROUP

    @property
    def best(self) -> float:
        return min(self.errors)

    @property
    def median(self) -> float:
        return statistics.median(self.errors)

    def describe(self) -> str:
        if not self.enough:
            return f"{self.name}: too few trials to say (n={self.n}, need {MIN_GROUP})"
        return f"{self.name}: best {self.best:.2f} px, median {self.median:.2f} px (n={self.n})"


def group_stats(rows: list[TrialRow], key: Callable[[TrialRow], object], names: dict | None = None) -> list[GroupStats]:
    """Errors of ``rows`` grouped by ``key(row)``; ``names`` maps a key to its display name."""
    groups: dict = {}
    for r in rows:
        if key(r) is not None:
            groups.setdefault(key(r), []).append(r.error)
    order = list(names) if names else sorted(groups, key=str)
    return [GroupStats((names or {}).get(k, str(k)), tuple(groups[k])) for k in order if k in groups]


def compare_sentence(stats: list[GroupStats], what: str) -> str:
    """Which group has the lowest median, or why that cannot be said."""
    rated = sorted((s for s in stats if s.enough), key=lambda s: s.median)
    if len(rated) < 2:
        return f"Too few completed trials to compare {what}: need {MIN_GROUP} or more in at least two groups."
    best, runner_up = rated[0], rated[1]
    return (f"Lowest median error: {best.name} ({best.median:.2f} px vs {runner_up.median:.2f} px for "
            f"{runner_up.name}, the next best).")


def basis_sentence(rows: list[TrialRow], used: list[TrialRow], info: StudyInfo) -> str:
    completed = sum(r.completed_ok for r in rows)
    stopped = sum(r.outcome == "stopped" for r in rows)
    epochs = f" that ran all {info.max_epochs} epochs" if info.max_epochs else ""
    left_out = [f"{stopped} stopped early"] if stopped else []
    if completed > len(used):
        left_out.insert(0, f"{completed - len(used)} completed with fewer epochs")
    note = f" ({', '.join(left_out)} left out)" if left_out else ""
    return f"From {len(used)} completed trial{'' if len(used) == 1 else 's'}{epochs}{note}."


def baseline_pairs(rows: list[TrialRow], factor: str) -> list[tuple[TrialRow, TrialRow]]:
    """Pairs of completed hand designs whose parameters differ in ``factor`` and in nothing they share."""
    designs = sorted((r for r in rows if r.baseline and r.completed_ok and factor in r.params), key=lambda r: r.number)
    pairs = []
    for i, a in enumerate(designs):
        for b in designs[i + 1:]:
            shared = (set(a.params) & set(b.params)) - {factor}
            if a.params[factor] != b.params[factor] and all(a.params[k] == b.params[k] for k in shared):
                pairs.append((a, b))
    return pairs


def baseline_sentence(rows: list[TrialRow], factor: str) -> str | None:
    pairs = baseline_pairs(rows, factor)
    if not pairs:
        return None
    parts = [f"{a.baseline} ({factor}={a.params[factor]}) {a.error:.2f} px vs {b.baseline} "
             f"({factor}={b.params[factor]}) {b.error:.2f} px" for a, b in pairs]
    return f"Hand designs differing only in {factor}: " + "; ".join(parts) + "."


def box_figure(title: str, stats: list[GroupStats], colours: list[str] | None = None) -> go.Figure:
    if not stats:
        return message_figure(title, "No completed trial to compare.")
    fig = go.Figure()
    for i, s in enumerate(stats):
        fig.add_trace(go.Box(
            y=list(s.errors), name=f"{s.name} (n={s.n})", boxpoints="all", jitter=0.4, pointpos=0,
            marker_color=colours[i] if colours else None, showlegend=False,
        ))
    fig.update_yaxes(type="log", title_text="validation mean error (px)", **log_ticks(_errors(fig)))
    fig.update_layout(title=title, height=420)
    return fig


def _answer(key: str, title: str, rows: list[TrialRow], info: StudyInfo, key_of, what: str,
            factor: str, names: dict | None = None, colours=None) -> Answer:
    used = full_budget(rows, info.max_epochs)
    stats = group_stats(used, key_of, names)
    sentences = [basis_sentence(rows, used, info), "; ".join(s.describe() for s in stats) + "." if stats else "",
                 compare_sentence(stats, what), baseline_sentence(rows, factor)]
    cols = colours(stats) if colours else None
    return Answer(key, title, tuple(s for s in sentences if s), box_figure(title, stats, cols))


def family_question(rows: list[TrialRow], info: StudyInfo) -> Answer:
    families = sorted({r.family for r in rows if r.family})
    return _answer("family", "ResNet vs U-Net vs the new families", rows, info, lambda r: r.family, "families",
                   "family", colours=lambda stats: [family_colour(s.name, families) for s in stats])


def batch_norm_question(rows: list[TrialRow], info: StudyInfo) -> Answer:
    title = "Batch norm, per family"
    used = full_budget(rows, info.max_epochs)
    families = sorted({r.family for r in used if r.family})
    sentences = [basis_sentence(rows, used, info)]
    for family in families:
        stats = group_stats([r for r in used if r.family == family], lambda r: bool(r.params.get("batch_norm")),
                            {False: "without BN", True: "with BN"})
        rated = {s.name: s for s in stats if s.enough}
        verdict = ""
        if len(rated) == 2:
            delta = rated["with BN"].median - rated["without BN"].median
            verdict = f"; batch norm {'lowers' if delta < 0 else 'raises'} the median by {abs(delta):.2f} px"
        sentences.append(f"{family} - " + "; ".join(s.describe() for s in stats) + verdict + ".")
    sentences.append(baseline_sentence(rows, "batch_norm"))
    fig = bn_box_figure(title, used, lambda r: r.family)
    return Answer("batch_norm", title, tuple(s for s in sentences if s), fig)


def bn_box_figure(title: str, used: list[TrialRow], x_of: Callable[[TrialRow], str]) -> go.Figure:
    """Errors grouped by ``x_of``, a box without and one with batch norm in each group."""
    if not used:
        return message_figure(title, "No completed trial to compare.")
    fig = go.Figure()
    for bn, colour in ((False, "#9ecae1"), (True, "#08519c")):
        group = [r for r in used if bool(r.params.get("batch_norm")) == bn]
        fig.add_trace(go.Box(x=[x_of(r) for r in group], y=[r.error for r in group],
                             name="with BN" if bn else "without BN", boxpoints="all", jitter=0.4, pointpos=0,
                             marker_color=colour))
    fig.update_yaxes(type="log", title_text="validation mean error (px)", **log_ticks(_errors(fig)))
    fig.update_layout(title=title, boxmode="group", height=420)
    return fig


def head_question(rows: list[TrialRow], info: StudyInfo) -> Answer:
    title = "Output head, with and without batch norm"
    used = full_budget(rows, info.max_epochs)
    sentences = [basis_sentence(rows, used, info)]
    names = {(h, bn): f"{h} {'with' if bn else 'without'} BN"
             for h in ("linear", "sigmoid", "softmax") for bn in (False, True)}
    stats = group_stats(used, lambda r: (r.params.get("head"), bool(r.params.get("batch_norm"))), names)
    if stats:
        sentences.append("; ".join(s.describe() for s in stats) + ".")
    sentences.append(compare_sentence(stats, "heads"))
    sentences.append(collapse_sentence(rows, info.max_epochs))
    sentences.append(baseline_sentence(rows, "head"))
    fig = bn_box_figure(title, used, lambda r: r.params.get("head"))
    return Answer("head", title, tuple(s for s in sentences if s), fig)


def collapse_sentence(rows: list[TrialRow], max_epochs: int | None = None) -> str:
    """The original study saw sigmoid heads without batch norm collapse to zero: count collapsed and diverged runs.
    Only runs trained to the end count, and diverged ones: a run stopped after an epoch or two is not collapsed,
    only early (the search's fair exploration trains its sigmoid trials to the end, so each side has some)."""
    def counts(bn: bool) -> tuple[int, int, int]:
        mine = [r for r in rows if r.params.get("head") == "sigmoid" and bool(r.params.get("batch_norm")) == bn]
        trained = [r for r in full_budget(mine, max_epochs) if r.error is not None]
        collapsed = sum(r.metrics.get("val_pck3", 1.0) < COLLAPSE_PCK3 for r in trained)
        return len(trained), collapsed, sum(r.outcome == "diverged" for r in mine)

    n, collapsed, diverged = counts(False)
    if n + diverged < MIN_GROUP:
        return (f"Too few sigmoid-without-BN trials to check the original finding that it collapses to zero "
                f"(n={n} trained to the end, {diverged} diverged, need {MIN_GROUP}).")
    n_bn, collapsed_bn, diverged_bn = counts(True)
    return (f"Collapse (PCK@3px below {COLLAPSE_PCK3:.0%}) or divergence, the original study's finding for sigmoid "
            f"without BN: {collapsed + diverged} of {n + diverged} sigmoid-without-BN runs trained to the end or "
            f"diverged ({collapsed} collapsed, {diverged} diverged) vs {collapsed_bn + diverged_bn} of "
            f"{n_bn + diverged_bn} with BN.")


def batch_size_question(rows: list[TrialRow], info: StudyInfo) -> Answer:
    title = "Batch size"
    used = [r for r in full_budget(rows, info.max_epochs) if "batch_size" in r.params]
    names = {b: f"batch {b[0]}-{b[1]}" for b in BATCH_BINS}
    stats = group_stats(used, lambda r: batch_bin(r.params["batch_size"]), names)
    sentences = [basis_sentence(rows, used, info)]
    if stats:
        sentences.append("; ".join(s.describe() for s in stats) + ".")
    small, large = (next((s for s in stats if s.name == names[b]), None) for b in (BATCH_BINS[0], BATCH_BINS[-1]))
    if small and large and small.enough and large.enough:
        gap = large.median - small.median
        sentences.append(f"The original study found little difference between 4 and 64: here the median is "
                         f"{small.median:.2f} px at batch 4-7 and {large.median:.2f} px at batch 64-128, "
                         f"{abs(gap):.2f} px ({abs(gap) / small.median:.0%}) {'higher' if gap > 0 else 'lower'} "
                         f"at the large batches.")
    else:
        sentences.append(f"Too few trials at batch 4-7 and 64-128 to check the original finding of little difference "
                         f"(need {MIN_GROUP} in each).")
    if len(used) >= 2 * MIN_GROUP:
        rho, p = spearmanr([r.params["batch_size"] for r in used], [r.error for r in used])
        trend = ("little relation" if abs(rho) < 0.2 else
                 "larger batches go with higher error" if rho > 0 else "larger batches go with lower error")
        sentences.append(f"Spearman correlation of batch size with error over {len(used)} trials: "
                         f"rho = {rho:.2f} (p = {p:.2g}), {trend} (the learning rate is not held fixed).")
    sentences.append(baseline_sentence(rows, "batch_size"))

    if not used:
        fig = message_figure(title, "No completed trial to compare.")
    else:
        families = sorted({r.family for r in used if r.family})
        fig = go.Figure()
        for family in families:
            group = [r for r in used if r.family == family]
            fig.add_trace(go.Scatter(x=[r.params["batch_size"] for r in group], y=[r.error for r in group],
                                     mode="markers", name=family, marker_color=family_colour(family, families),
                                     customdata=[r.number for r in group]))
        rated = [(b, s) for b in BATCH_BINS for s in stats if s.name == names[b] and s.enough]
        fig.add_trace(go.Scatter(x=[(b[0] * b[1]) ** 0.5 for b, _ in rated], y=[s.median for _, s in rated],
                                 mode="lines+markers", name=f"median per bin (n >= {MIN_GROUP})",
                                 line=dict(color="black", dash="dot")))
        powers = [2**k for k in range(2, 8)]  # 4 .. 128, the searched range
        fig.update_xaxes(type="log", title_text="batch size", tickvals=powers, ticktext=[str(p) for p in powers])
        fig.update_yaxes(type="log", title_text="validation mean error (px)", **log_ticks(_errors(fig)))
        fig.update_layout(title=title, height=420)
    return Answer("batch_size", title, tuple(s for s in sentences if s), fig)


def _errors(fig: go.Figure) -> list[float]:
    return [y for trace in fig.data for y in (trace.y or ())]




def optimizer_question(rows: list[TrialRow], info: StudyInfo) -> Answer:
    return _answer("optimizer", "Optimizer", rows, info, lambda r: r.params.get("optimizer"), "optimizers",
                   "optimizer")


def receptive_field_question(rows: list[TrialRow], info: StudyInfo) -> Answer:
    """Does a heatmap pixel need to see more of the crop? Cones of other cameras are framed larger."""
    title = "Receptive field"
    used = [r for r in full_budget(rows, info.max_epochs) if r.receptive_field is not None]
    sentences = [basis_sentence(rows, used, info)]
    families = sorted({r.family for r in used if r.family})
    for family in [None, *families]:
        group = [r for r in used if family is None or r.family == family]
        fields = {r.receptive_field for r in group}
        name = family or "all families"
        if len(group) < 2 * MIN_GROUP or len(fields) < 2:
            sentences.append(f"{name}: too few trials or receptive fields to say (n={len(group)}, "
                             f"{len(fields)} distinct, need {2 * MIN_GROUP} and 2).")
            continue
        rho, p = spearmanr([r.receptive_field for r in group], [r.error for r in group])
        trend = ("little relation" if abs(rho) < 0.2 else
                 "a larger receptive field goes with lower error" if rho < 0 else
                 "a larger receptive field goes with higher error")
        best = min(group, key=lambda r: r.error)
        sentences.append(f"{name}: receptive fields {min(fields)}-{max(fields)} px of the crop's 64; Spearman rho "
                         f"with error {rho:.2f} (p = {p:.2g}, n={len(group)}), {trend}; the best ({best.error:.2f} "
                         f"px, trial {best.number}) sees {best.receptive_field} px.")
    if not used:
        fig = message_figure(title, "No completed trial recorded its receptive field.")
    else:
        fig = go.Figure()
        for family in families:
            group = [r for r in used if r.family == family]
            fig.add_trace(go.Scatter(x=[r.receptive_field for r in group], y=[r.error for r in group],
                                     mode="markers", name=family, marker_color=family_colour(family, families),
                                     customdata=[r.number for r in group]))
        fig.update_xaxes(title_text="receptive field (px of the 64 px crop height)")
        fig.update_yaxes(type="log", title_text="validation mean error (px)", **log_ticks(_errors(fig)))
        fig.update_layout(title=title, height=420)
    return Answer("receptive_field", title, tuple(sentences), fig)


QUESTIONS = (family_question, batch_norm_question, head_question, batch_size_question, optimizer_question,
             receptive_field_question)


def answer_all(rows: list[TrialRow], info: StudyInfo) -> list[Answer]:
    return [question(rows, info) for question in QUESTIONS]


def progress_sentence(rows: list[TrialRow], info: StudyInfo) -> str:
    """Would more trials help: how much the best feasible error moved over the last quarter of completed trials."""
    done = sorted((r for r in rows if r.completed_ok), key=lambda r: r.number)
    best = best_feasible(rows, info.max_bytes, trial_of=row_trial)
    if best is None:
        return "No completed trial within the size cap yet."
    position = done.index(best) + 1
    head = (f"Best error within the cap: {best.error:.2f} px (trial {best.number}), reached at completed trial "
            f"{position} of {len(done)}.")
    if len(done) < 4 * MIN_GROUP:
        return head + f" Too few completed trials ({len(done)}) to judge whether the search has levelled off."
    cut = done[: len(done) - len(done) // 4]
    best_before = best_feasible(cut, info.max_bytes, trial_of=row_trial)
    if best_before is None:
        return head + " The best came in the last quarter of completed trials: more trials are likely to help."
    before = best_before.error
    gain = before - best.error
    verdict = ("the search has levelled off; more trials are unlikely to help much" if gain < 0.01 * before
               else "still improving; more trials are likely to help")
    return head + (f" Over the last {len(done) // 4} completed trials the best moved by {gain:.2f} px "
                   f"({gain / before:.1%}): {verdict}.")
