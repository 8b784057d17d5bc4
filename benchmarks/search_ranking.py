r"""Does the search's validation error pick the configs that generalise? Its top trials, leave-one-team-out.

    python benchmarks/search_ranking.py --storage sqlite:///runs/rank.db --study rank-tuwr \
        --data ../shared/cones_dataset --top 10 --jobs 2 --png docs/figures/search_ranking.png

Takes the study's ``--top`` complete trials within the cap (lowest validation error first), trains each
config leave-one-team-out on the study's data with the search's own recipe (its augmentation and epoch
budget; ``benchmarks/generalisation.py`` does the training and caches every run) and prints, per trial, the
search's error beside the held-out error of every team and the mean over teams. Spearman's rho between the
search's error and the mean over teams says how well the search ranks what generalises; the rho against the
teams the search trained on (not its validation team) is the honest one, since the validation team's
fold repeats the search's own split. ``--png`` draws the scatter.

    python benchmarks/search_ranking.py --storage sqlite:///runs/int8.db --study int8 \
        --data ../shared/cones_dataset --top 8 --threads 2 --png docs/figures/search_ranking_int8.png

An int8 study (``runners/search.py --weights int8``) scores each trial by post-training quantization of its float
training: cheap, but is it honest? For such a study the command measures how well that score ranks what ships.
Each picked config trains float without the held-out team with the search's recipe, then is calibrated and
fine-tuned quantization-aware for ``--qat-epochs`` (retrain's default), exported as int8 QDQ and measured through
ONNX Runtime on the held-out team (``benchmarks/int8_vs_float.py``'s ``run_model``; the float trainings are the
cached leave-one-team-out runs, so a rerun only quantizes). The held-out teams are ``--teams``, by default the
study's own validation teams (an int8 run costs minutes per team): there the fold repeats the search's split, so
the rho says what post-training quantization gets wrong, not what fails to generalise. Prints per trial the
search's error, the retrained float model's error in torch, the int8 model's error and its weight bytes, then
Spearman's rho of the search's error against each. Runs go one at a time on ``--threads`` torch threads;
``--jobs`` is for float32 studies.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr


from analysis.study_data import read_trials, row_trial, study_info
from benchmarks.generalisation import benchmark
from benchmarks.int8_vs_float import run_model
from cli.args import add_data_argument, doc_parser, non_negative_int, positive_int
from cli.exits import UserError, run
from cones.types import ConeSet
from objectives.recipe import Recipe
from search_space.config import Config
from search_space.size import measure
from shipping.record import DEFAULT_QAT_EPOCHS
from studies.reader import StudyNotFound, best_feasible, read_study, study_weights


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", help="study name (default: the storage's only study)")
    add_data_argument(parser, "the export the study searched on", required=True)
    parser.add_argument("--top", type=int, default=10, help="how many of the best trials (default 10)")
    parser.add_argument("--jobs", type=int, default=1, help="float32 studies: runs at once, one torch thread each "
                                                            "(an int8 study's runs go one at a time, see --threads)")
    parser.add_argument("--teams", metavar="TEAM,...", help="int8 studies: the held-out teams, comma-separated "
                        "(default: the study's validation teams). A float32 study holds out every team")
    parser.add_argument("--qat-epochs", type=non_negative_int, default=DEFAULT_QAT_EPOCHS,
                        help=f"int8 studies: epochs of quantization-aware fine-tuning after calibration (default "
                             f"{DEFAULT_QAT_EPOCHS}, retrain's; 0: post-training quantization only)")
    parser.add_argument("--threads", type=positive_int, help="int8 studies: torch threads for training (default: "
                                                             "torch's choice)")
    parser.add_argument("--png", metavar="FILE", help="write the scatter of search error against held-out error")
    parser.add_argument("--json", metavar="FILE", help="write the table")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top < 3:
        parser.error(f"--top must be >= 3 for a rank correlation, got {args.top}")
    try:
        study = read_study(args.storage, args.study)
    except StudyNotFound as error:
        raise SystemExit(f"search_ranking: {error}") from None
    info = study_info(study, args.storage)
    int8 = study_weights(study) == "int8"
    if args.teams is not None and not int8:
        raise UserError(f"--teams {args.teams}: {info.name} is a float32 study, ranked leave-one-team-out over "
                        "every team (benchmarks/generalisation.py trains them all); drop --teams")
    picked = top_trials(read_trials(study), study, info.max_bytes, args.top)
    if len(picked) < 3:
        raise SystemExit(f"search_ranking: {info.name} has {len(picked)} complete trials within the cap; need 3+")
    epochs = info.max_epochs or 12
    study_val_teams = study.user_attrs.get("val_teams") or []
    val_teams = set(study_val_teams)

    from cones.load import load_data
    data = load_data(args.data)
    if int8:
        teams = held_out_teams(data, args.teams, study_val_teams, " + ".join(map(str, args.data)))
        table = int8_ranking(data, picked, Recipe(epochs=epochs), teams, qat_epochs=args.qat_epochs,
                             cap=info.max_bytes, threads=args.threads)
        print(format_int8_table(table))
    else:
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
        best = best_feasible(remaining, max_bytes, trial_of=row_trial)
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


def held_out_teams(data: ConeSet, teams: str | None, val_teams: list[str], data_path: str) -> list[str]:
    """The teams an int8 study's trials are held out from, one at a time: ``--teams``, else the study's own."""
    known = sorted(set(data.teams))
    if len(known) < 2:
        raise UserError(f"--data {data_path} holds one team ({known[0]}); holding a team out needs 2 or more")
    if teams is None:
        if not val_teams:
            raise UserError(f"the study validated on a random split, not on teams; choose the held-out teams with "
                            f"--teams (comma-separated; the teams of --data: {', '.join(known)})")
        unknown = [team for team in val_teams if team not in known]
        if unknown:
            raise UserError(f"the study's validation teams {', '.join(unknown)} are not teams of --data {data_path} "
                            f"(did it search other data?); its teams: {', '.join(known)}. Choose with --teams")
        return list(dict.fromkeys(val_teams))
    picked = [team.strip() for team in teams.split(",") if team.strip()]
    unknown = [team for team in picked if team not in known]
    if unknown or not picked:
        raise UserError(f"--teams {', '.join(unknown) or '(none)'}: not a team of --data {data_path}; its teams: "
                        f"{', '.join(known)}")
    return list(dict.fromkeys(picked))


def int8_ranking(data: ConeSet, picked, recipe: Recipe, teams: list[str], *, qat_epochs: int, cap: int,
                 threads: int | None, log=print) -> dict:
    """Every picked trial retrained without each of ``teams``, fine-tuned quantization-aware and measured as int8
    through ONNX Runtime (``benchmarks.int8_vs_float.run_model``, seed 0), ranked against the search's error."""
    data_id = data.fingerprint()
    folds = []
    with tempfile.TemporaryDirectory() as scratch:  # the ONNX files are measured, not kept
        for done, (number, _, cfg) in enumerate(picked, 1):
            for team in teams:
                fold = run_model(data, data_id, cfg, "int8", recipe, team, 0, qat_epochs,
                                 Path(scratch) / f"{number}-{team}.onnx", cap, threads, log)
                fold.pop("onnx_file", None)
                folds.append({"trial": number, "team": team, **fold})
                figure = f"{fold['onnx']['mean_px']:.3f} px int8" if fold["status"] == "ok" else fold["reason"]
                log(f"[{done}/{len(picked)}] #{number} held out {team}: {figure}")
    table = int8_table(picked, folds, teams)
    table.update(epochs=recipe.epochs, qat_epochs=qat_epochs, folds=folds)
    return table


def int8_table(picked, folds: list[dict], teams: list[str]) -> dict:
    """Per trial the search's error, the retrained float and int8 errors (means over ``teams``; a diverged run
    counts as inf, ranked last) and the int8 weight bytes; Spearman's rho of the search's error against both."""
    trials = []
    for number, error, cfg in picked:
        mine = {f["team"]: f for f in folds if f["trial"] == number}
        per_team = {team: {"float_px": mine[team]["float_torch_mean_px"],
                           "int8_px": mine[team]["onnx"]["mean_px"] if mine[team]["status"] == "ok" else math.inf}
                    for team in teams}
        done = [f for f in mine.values() if f["status"] == "ok"]
        trials.append({"trial": number, "search_px": error, "teams": per_team,
                       "float_px": float(np.mean([per_team[t]["float_px"] for t in teams])),
                       "int8_px": float(np.mean([per_team[t]["int8_px"] for t in teams])),
                       "weight_bytes": done[0]["weight_bytes"] if done else measure(cfg, weights="int8").weight_bytes,
                       "diverged": [f["reason"] for f in mine.values() if f["status"] != "ok"]})
    search = [t["search_px"] for t in trials]
    rho_int8 = spearmanr(search, [t["int8_px"] for t in trials])
    rho_float = spearmanr(search, [t["float_px"] for t in trials])
    return {"weights": "int8", "teams": list(teams), "trials": trials,
            "rho_int8": float(rho_int8.statistic), "p_int8": float(rho_int8.pvalue),
            "rho_float": float(rho_float.statistic), "p_float": float(rho_float.pvalue)}


def format_int8_table(table: dict) -> str:
    lines = [f"{'trial':>6} {'search px':>9} {'float px':>8} {'int8 px':>8} {'weight bytes':>12}"]
    for t in table["trials"]:
        lines.append(f"{'#' + str(t['trial']):>6} {t['search_px']:>9.3f} {t['float_px']:>8.3f} {t['int8_px']:>8.3f} "
                     f"{t['weight_bytes']:>12,}" + (f"  diverged: {'; '.join(t['diverged'])}" if t["diverged"] else ""))
    lines.append("search px: the search's score (post-training quantization); float px: the retrained float model "
                 "in torch")
    lines.append(f"int8 px: it calibrated, {table['qat_epochs']} quantization-aware epochs, int8 QDQ in ONNX Runtime; "
                 f"held out {', '.join(table['teams'])}" + (" (mean over them)" if len(table["teams"]) > 1 else ""))
    lines.append(f"Spearman rho, search error vs retrained int8: {table['rho_int8']:+.2f} (p = {table['p_int8']:.2f})")
    lines.append(f"Spearman rho, search error vs retrained float: {table['rho_float']:+.2f} "
                 f"(p = {table['p_float']:.2f})")
    return "\n".join(lines)


def draw(table: dict, path: str, study_name: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from analysis.png import label_points, save_figure

    figure = Figure(figsize=(6, 4.5), dpi=110)
    FigureCanvasAgg(figure)  # label_points lays the names out in pixels
    axis = figure.subplots()
    search = [t["search_px"] for t in table["trials"]]
    if table.get("weights") == "int8":
        held_out = [t["int8_px"] for t in table["trials"]]
        rho = table["rho_int8"]
        xlabel = "search error, post-training quantization (px)"
        ylabel = f"retrained int8 error, ONNX Runtime, held out {', '.join(table['teams'])} (px)"
    else:
        key = "others_px" if "rho_others" in table else "mean_px"
        held_out = [t[key] for t in table["trials"]]
        rho = table.get("rho_others", table["rho_mean"])
        what = f"held out {', '.join(table['others'])}" if "rho_others" in table else "mean over held-out teams"
        xlabel, ylabel = "search validation error (px)", f"leave-one-team-out error, {what} (px)"
    axis.scatter(search, held_out, color="#1f77b4")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(f"{study_name}: top {len(search)} trials, Spearman rho {rho:+.2f}", fontsize=10)
    axis.grid(alpha=0.3)
    axis.margins(x=0.08, y=0.1)  # room for the names of the points at the edges
    figure.tight_layout()
    label_points(axis, search, held_out, [f"#{t['trial']}" for t in table["trials"]])
    save_figure(figure, path)


if __name__ == "__main__":
    sys.exit(run(main, "search_ranking"))
