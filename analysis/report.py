"""Write one self-contained HTML report of a search study, plus PNGs of the main figures for the README.

    python analysis/report.py --study NAME --storage sqlite:///optuna.db --out out/report

writes ``out/report/report.html`` (opens offline: plotly.js is inlined once) and ``pareto_size.png``,
``pareto_macs.png``, ``importances.png``, ``history.png``. ``--study`` may be left out when the storage holds
exactly one study. Only reads the study; never trains. The original study's questions are answered from the
search's trials and, when the storage holds its ablation (``runners/ablate.py``), from that too, side by side.

The PNGs are drawn with matplotlib (``analysis.png``), so no browser is needed; ``--no-png`` skips them.
"""
from __future__ import annotations

if __name__ == "__main__":  # first: Ctrl-C while the imports below run is one line and exit 130
    from cli.exits import stop_on_ctrl_c
    stop_on_ctrl_c("report")

import argparse
import html
import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import plotly.graph_objects as go

from analysis.figures import history_figure, importance_figure, pareto_figure
from analysis.importances import MIN_TRIALS, param_importances
from analysis.png import write_png
from analysis.questions import answer_all, progress_sentence
from analysis.study_data import StudyInfo, TrialRow, read_trials, row_trial, study_info
from analysis.verdicts import Twice, TwiceRow, answer_twice, stale_note
from cli.args import OneLineParser
from cli.exits import run
from cli.paths import DEFAULT_STORAGE, check_out_dir, check_storage, sqlite_path
from deploy.atomic import write_text
from studies.reader import StudyNotFound, best_feasible, read_study

PNG_SIZE = dict(width=1100, height=650)


@dataclass
class Section:
    title: str
    sentences: list[str] = field(default_factory=list)
    figures: list[go.Figure] = field(default_factory=list)
    level: int = 2
    html: str = ""  # already escaped: a table after the sentences


@dataclass
class Report:
    info: StudyInfo
    header_html: str
    sections: list[Section]
    pngs: dict[str, go.Figure]  # file name -> figure


def export_command(info: StudyInfo, trial: int) -> str:
    return (f"python runners/export.py --study {shlex.quote(info.name)} --storage {shlex.quote(info.storage)} "
            f"--trial {trial} --out best.json")


def build_report(storage: str, study_name: str | None, min_trials: int = MIN_TRIALS) -> Report:
    study = read_study(storage, study_name)
    info = study_info(study, storage)
    rows = read_trials(study)

    pareto_size = pareto_figure(rows, info, "size")
    pareto_macs = pareto_figure(rows, info, "macs")
    history = history_figure(rows, info)
    importances = importance_figure(param_importances(study, min_trials=min_trials), min_trials)
    sections = [
        Section("Pareto front", [
            "Every finished trial; the red line joins the completed trials within the size cap that no other "
            "is both smaller (or cheaper) and more accurate than. Oversize and diverged trials have no error: "
            "they sit in the strip on top, at their size."], [pareto_size, pareto_macs]),
        Section("Optimisation history", [progress_sentence(rows, info)], [history]),
        Section("Parameter importance", [
            "PED-ANOVA and fANOVA over the completed trials; a conditional parameter is rated within the trials "
            "where it applies."], [importances]),
        Section("The original study's questions"),
    ]
    sections += [Section(a.title, list(a.sentences), [a.figure], level=3) for a in answer_all(rows, info)]
    sections.append(twice_section(rows, info))
    pngs = {"pareto_size.png": pareto_size, "pareto_macs.png": pareto_macs,
            "importances.png": importances, "history.png": history}
    return Report(info, header_html(info, rows), sections, pngs)


def header_html(info: StudyInfo, rows: list[TrialRow]) -> str:
    e = html.escape
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    outcome_text = ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    objectives = info.user_attrs.get("objectives") or ["error", "size"][: len(info.directions)]
    facts = [
        ("storage", info.storage),
        ("objectives", ", ".join(f"{o} ({d})" for o, d in zip(objectives, info.directions))),
        ("trials", f"{len(rows)} ({outcome_text})" if rows else "0"),
        ("size cap", f"{info.max_bytes} bytes ({info.max_kb:g} KB)"),
        ("epochs per trial", str(info.max_epochs) if info.max_epochs else "not recorded"),
    ]
    facts += [(k, str(info.user_attrs[k])) for k in ("data", "split", "seed", "command") if k in info.user_attrs]
    if reference_text(rows):
        facts.append(("reference", reference_text(rows)))
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)

    best = best_feasible(rows, info.max_bytes, trial_of=row_trial)
    if best is None:
        best_html = "<p>No completed trial within the size cap yet, so nothing to export.</p>"
    else:
        metrics = ", ".join(f"{k} {v:.3g}" for k, v in best.metrics.items())
        macs = f"{best.macs / 1e6:.2f} M MACs, " if best.macs is not None else ""
        best_html = (
            f"<p><b>Trial {best.number}</b>{e(f' ({best.baseline})' if best.baseline else '')}: "
            f"{best.error:.3f} px validation mean error, {best.size_kb:.1f} KB, {e(macs)}{e(best.label())}.</p>"
            f"<p>{e(metrics)}</p><p>Parameters: <code>{e(json.dumps(best.params))}</code></p>"
            f"<p>Export it:</p><pre>{e(export_command(info, best.number))}</pre>"
        )
    return (f"<h1>Study {e(info.name)}</h1><table>{table}</table>"
            f"<h2>Best trial (lowest error within the cap)</h2>{best_html}")


def reference_text(rows: list[TrialRow]) -> str | None:
    """What became of the hand designs: trained to the end, stopped by the reference bar once their result was
    settled (their error is the one at that epoch), over the cap, copied from another study."""
    hand = [r for r in rows if r.baseline]
    if not hand:
        return None
    parts = [f"{sum(r.outcome == 'ok' for r in hand)} trained to the end"]
    stopped = [r for r in hand if r.outcome == "stopped"]
    if stopped:
        parts.append(f"{len(stopped)} stopped early by the reference bar once far behind "
                     f"({', '.join(f'{r.baseline} after epoch {r.epochs}' for r in stopped)}: "
                     "the error recorded is the one at that epoch)")
    oversize = sum(r.outcome == "oversize" for r in hand)
    if oversize:
        parts.append(f"{oversize} over the size cap, not trained")
    reused = sum("reused_from" in r.trial.user_attrs for r in hand)
    return (f"{len(hand)} hand designs: " + ", ".join(parts)
            + (f"; {reused} of them reused from another study of this storage" if reused else ""))


TWICE_TITLE = "The original study's questions, answered twice"


def twice_section(rows: list[TrialRow], info: StudyInfo) -> Section:
    """Each question's verdict from the search's trials and from the ablation, side by side, disagreements named."""
    twice = answer_twice(rows, info)
    sentences = [
        "One rule for both (the ablation table's): a difference beyond the combined spread sqrt(sd_a^2 + sd_b^2) "
        "decides, anything within it cannot tell. The search compares the medians of its completed full-budget "
        "trials, which differ in every other decision too; the ablation compares means over the same seeds of the "
        "best config and its variants (one decision changed; two for the questions that need it: the other "
        "family and the sigmoid head with batch norm flipped)."]
    if twice.ablation is None:
        sentences.append(f"No ablation of study {info.name} in this storage yet, so only the search answers.")
    else:
        sentences.append(f"Ablation: study {twice.ablation.name} ({twice.ablation.source}).")
        disagree = [r.claim for r in twice.rows if r.agree is False]
        sentences.append("The sources disagree on: " + "; ".join(disagree) + "." if disagree else
                         "The sources agree wherever both can tell.")
    sentences += [note for note in [stale_note(twice, rows, info)] if note]
    return Section(TWICE_TITLE, sentences, html=twice_table(twice))


def twice_table(twice: Twice) -> str:
    e = html.escape
    head = ("<tr><th>claim (what the verdicts mean)</th><th>from the search's trials</th>"
            "<th>from the ablation</th><th>agree</th></tr>")
    body = []
    for i, row in enumerate(twice.rows):
        if row.ablation is not None:
            ablation = f"<td>{_verdict_cell(row.ablation.verdict, row.ablation.figures)}</td>"
        elif i == 0:  # one cell down the column: how to run it
            ablation = (f"<td rowspan='{len(twice.rows)}'>not run yet; run it (add --data DIR if the search's data "
                        f"has moved):<pre>{e(twice.how_to_run)}</pre></td>")
        else:
            ablation = ""
        body.append(f"<tr><td><b>{e(row.claim)}</b><br><small>{e(row.meaning)}</small></td>"
                    f"<td>{_verdict_cell(row.search.verdict, row.search.figures)}</td>{ablation}"
                    f"<td>{_agree(row)}</td></tr>")
    return f"<table class='twice'>{head}{''.join(body)}</table>"


def _verdict_cell(verdict: str, figures: str) -> str:
    return f"<b>{html.escape(verdict)}</b><br><small>{html.escape(figures)}</small>"


def _agree(row: TwiceRow) -> str:
    if row.agree is None:
        return "-"
    if row.agree:
        return "yes"
    return f"<b>NO</b>: search {html.escape(row.search.verdict)}, ablation {html.escape(row.ablation.verdict)}"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse}th,td{text-align:left;padding:2px 12px 2px 0;vertical-align:top}
pre{background:#f4f4f4;padding:.6em;overflow-x:auto}code{font-size:90%}
table.twice td,table.twice th{border-top:1px solid #ccc;padding:4px 12px 4px 0}"""


def render_html(report: Report) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Study {html.escape(report.info.name)}</title>"
             f"<style>{STYLE}</style></head><body>", report.header_html]
    inline_js = True  # plotly.js goes in once, with the first figure, so the page opens offline
    for section in report.sections:
        parts.append(f"<h{section.level}>{html.escape(section.title)}</h{section.level}>")
        parts += [f"<p>{html.escape(s)}</p>" for s in section.sentences]
        parts.append(section.html)
        for fig in section.figures:
            parts.append(fig.to_html(full_html=False, include_plotlyjs=inline_js))
            inline_js = False
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report: Report, out: Path, png: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    page = out / "report.html"
    write_text(page, render_html(report))
    written = [page]
    if png:
        written += [write_png(fig, out / name, **PNG_SIZE) for name, fig in report.pngs.items()]
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", help="study name (default: the storage's only study)")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    parser.add_argument("--out", required=True, type=Path,
                        help="directory for report.html and the PNGs (an existing one with other files only with --force)")
    parser.add_argument("--force", action="store_true", help="write into --out even if it holds other files")
    parser.add_argument("--no-png", action="store_true", help="write only report.html, no PNGs")
    parser.add_argument("--min-trials", type=int, default=MIN_TRIALS,
                        help=f"completed trials needed to rate parameter importance (default {MIN_TRIALS})")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.min_trials < 2:
        parser.error(f"--min-trials must be >= 2, got {args.min_trials}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_storage(args.storage, must_exist=True)
    check_out_dir(args.out, force=args.force or _only_reports(args.out),
                  inputs=[p for p in [sqlite_path(args.storage)] if p])
    try:
        report = build_report(args.storage, args.study, args.min_trials)
    except StudyNotFound as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        written = write_report(report, args.out, png=not args.no_png)
    except OSError as err:
        print(f"cannot write to {args.out}: {err.strerror}; pick a writable --out", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def _only_reports(out: Path) -> bool:
    """A folder holding nothing but an earlier report: rewriting it is what the user asked for."""
    return out.is_dir() and all(p.name == "report.html" or p.suffix == ".png" for p in out.iterdir())


if __name__ == "__main__":
    sys.exit(run(main, "report"))
