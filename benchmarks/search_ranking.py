"""Does the search's validation error pick the configs that generalise? Its top trials, leave-one-team-out.

    python benchmarks/search_ranking.py --storage sqlite:///runs/rank.db --study rank-tuwr \
        --data ../shared/cones_dataset --top 10 --jobs 2 --png docs/figures/search_ranking.png

Takes the study's ``--top`` complete trials within the cap (lowest validation error first), trains each
config leave-one-team-out on the study's data with the search's own recipe (its augmentation and epoch
budget; ``benchmarks/generalisation.py`` does the training and caches every run) and prints, per trial, the
search's error beside the held-out error of every team and the mean over teams. Spearman's rho between the
search's error and the mean over teams says how well the search ranks what generalises; the rho against the
teams the search trained on (not its validation team) is the honest one, since the validation team's
fold repeats the search's own split. ``--png`` draws the scatter.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from analysis.study_data import best_feasible, read_trials, study_info  # noqa: E402
from objectives.study_reader import StudyNotFound, read_study  # noqa: E402
from benchmarks.generalisation import benchmark  # noqa: E402
from objectives.recipe import Recipe  # noqa: E402
from runners.cli import doc_parser  # noqa: E402
from search_space.config import Config  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = doc_parser(__doc__)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", help="study name (default: the storage's only study)")
    parser.add_argument("--data", required=True, metavar="DIR", help="the export the study searched on")
    parser.add_argument("--top", type=int, default=10, help="how many of the best trials (default 10)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, one torch thread each")
    parser.add_argument("--png", metavar="FILE", help="write the scatter of search error against held-out error")
    parser.add_argument("--json", metavar="FILE", help="write the table")
    args = parser.parse_args(argv)
    if args.top < 3:
        parser.error(f"--top must be >= 3 for a rank correlation, got {args.top}")
    try:
        study = read_study(args.storage, args.study)
    except StudyNotFound as error:
        raise SystemExit(f"search_ranking: {error}") from None
    info = study_info(study, args.storage)
    picked = top_trials(read_trials(study), study, info.max_bytes, args.top)
    if len(picked) < 3:
        raise SystemExit(f"search_ranking: {info.name} has {len(picked)} complete trials within the cap; need 3+")
    epochs = info.max_epochs or 12
    val_teams = set(study.user_attrs.get("val_teams") or [])

    from cones.load import load_data
    data = load_data(args.data)
    runs = [(f"#{number}", cfg, "search", Recipe(epochs=epochs)) for number, _, cfg in picked]
    summary = benchmark(data, data.fingerprint(), runs, seeds=[0], jobs=args.jobs)
    table = ranking_table(picked, summary, val_teams)
    print(format_table(table, summary["teams"], val_teams))
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1) + "\n")
    if args.png:
        draw(table, args.png, info.name)
        print(f"wrote {args.png}")
    return 0


def top_trials(rows, study, max_bytes: int, top: int) -> list[tuple[int, float, Config]]:
    """(number, search error, config) of the best ``top`` complete trials within the cap."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    picked = []
    remaining = list(rows)
    while len(picked) < top:
        best = best_feasible(remaining, max_bytes)
        if best is None:
            break
        remaining = [r for r in remaining if r.number != best.number]
        config = by_number[best.number].user_attrs.get("config")
        if config is not None and best.baseline is None:
            picked.append((best.number, best.error, Config.from_dict(config)))
    return picked


def ranking_table(picked, summary: dict, val_teams: set[str]) -> dict:
    rows = {row["model"]: row for row in summary["rows"] if row["inference"] == "parabola"}
    others = [t for t in summary["teams"] if t not in val_teams]
    trials = []
    for number, error, _ in picked:
        row = rows[f"#{number}"]
        per_team = {team: row["teams"][team]["mean_px"] for team in summary["teams"]}
        trials.append({"trial": number, "search_px": error, "teams": per_team,
                       "mean_px": row["mean"]["mean_px"],
                       "others_px": float(np.mean([per_team[t] for t in others])) if others else None})
    search = [t["search_px"] for t in trials]
    rho_all = spearmanr(search, [t["mean_px"] for t in trials])
    result = {"trials": trials, "rho_mean": float(rho_all.statistic), "p_mean": float(rho_all.pvalue)}
    if others:
        rho_others = spearmanr(search, [t["others_px"] for t in trials])
        result.update(rho_others=float(rho_others.statistic), p_others=float(rho_others.pvalue), others=others)
    return result


def format_table(table: dict, teams: list[str], val_teams: set[str]) -> str:
    marks = [f"{t}{'*' if t in val_teams else ''}" for t in teams]
    lines = [f"{'trial':>6} {'search px':>9} " + " ".join(f"{m:>7}" for m in marks) + f" {'mean':>7}"]
    for t in table["trials"]:
        lines.append(f"{'#' + str(t['trial']):>6} {t['search_px']:>9.3f} "
                     + " ".join(f"{t['teams'][team]:>7.3f}" for team in teams) + f" {t['mean_px']:>7.3f}")
    lines.append(f"Spearman rho, search error vs mean over teams: {table['rho_mean']:+.2f} (p = {table['p_mean']:.2f})")
    if "rho_others" in table:
        lines.append(f"Spearman rho, search error vs the teams it did not validate on ({', '.join(table['others'])}): "
                     f"{table['rho_others']:+.2f} (p = {table['p_others']:.2f})   (* = the search's validation team)")
    return "\n".join(lines)


def draw(table: dict, path: str, study_name: str) -> None:
    from matplotlib.figure import Figure

    from analysis.png import save_figure

    figure = Figure(figsize=(6, 4.5), dpi=110)
    axis = figure.subplots()
    search = [t["search_px"] for t in table["trials"]]
    key = "others_px" if "rho_others" in table else "mean_px"
    held_out = [t[key] for t in table["trials"]]
    axis.scatter(search, held_out, color="#1f77b4")
    for t, x, y in zip(table["trials"], search, held_out):
        axis.annotate(f"#{t['trial']}", (x, y), textcoords="offset points", xytext=(4, 3), fontsize=8)
    rho = table.get("rho_others", table["rho_mean"])
    what = f"held out {', '.join(table['others'])}" if "rho_others" in table else "mean over held-out teams"
    axis.set_xlabel("search validation error (px)")
    axis.set_ylabel(f"leave-one-team-out error, {what} (px)")
    axis.set_title(f"{study_name}: top {len(search)} trials, Spearman rho {rho:+.2f}", fontsize=10)
    axis.grid(alpha=0.3)
    save_figure(figure, path)


if __name__ == "__main__":
    sys.exit(main())
