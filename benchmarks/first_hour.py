"""The search's first hour: the best validation error a fresh study holds after 5, 10, 20, 30 and 60 minutes,
today's rules against the new ones, on the same data, split and seed.

    python benchmarks/first_hour.py --data ../shared/cones_dataset --val-teams tuwr --minutes 60 --workers 2
    python benchmarks/first_hour.py --data ../shared/cones_dataset --val-teams tuwr --minutes 20 --seeds 0,1
    python benchmarks/first_hour.py --data ../shared/cones_dataset --val-teams tuwr --rules new --trials 200

The last runs a whole 200-trial search and reads its first hour (and prints the whole run's length and best).

Each rule set runs ``runners/search.py`` as a user would (a fresh study in its own SQLite file under --out,
``--timeout`` the given minutes), one after the other so that each has the whole machine:

- ``today``: the hand designs first, then Optuna's successive halving alone, every trial scored with one seed
  (``--reference-first --rungs optuna --no-reference-bar --no-fair-share --no-starting-point --no-confirm``);
- ``new``: the defaults (the hand designs beside the search; the first sampled trials are the product's starting
  points, ``search_space/start.py``; the first trials judged against the hand designs at successive halving's
  rungs; the reference bar stops settled trials, hand designs included; fair exploration; a trial that beats the
  study's best scored by two seeds' mean);
- ``no-fair-share``: the defaults with the sampler choosing every trial (issue 18's side by side: with
  ``--trials 200``, each whole run's best and when it came within 5% of it).

Then it reads each study: the best complete trial's validation error by wall-clock minutes since the first
trial started (hand designs included, as a user sees it), when a sampled trial first beat every hand design's
full-budget result (the best in any of the seed's studies under --out: the new rules stop hand designs that
fall far behind, at an error above it), when a trial the sampler chose itself did (not the starting point,
which on the shared data was found by a search on the same split), when the study first held a trial within 5%
of the run's best, and how many trials finished. ``--json FILE`` writes the table.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

from cli.args import add_data_argument, doc_parser, positive_float, positive_int
from cones.load import data_options
from studies.attrs import CHOSEN_BY, STARTING

# "today": the rules before issue 16, as the issue measured them.
RULES = {"today": ["--no-reference-bar", "--no-fair-share", "--reference-first", "--rungs", "optuna",
                   "--no-starting-point", "--no-confirm"], "new": [], "no-fair-share": ["--no-fair-share"]}
MARKS = (5, 10, 20, 30, 60)
NEAR = 1.05  # "within 5% of the run's best"


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    add_data_argument(parser, "Supervisely export or COCO keypoints .json", required=True)
    parser.add_argument("--val-teams", default="tuwr", help="validation teams (default tuwr)")
    parser.add_argument("--minutes", type=positive_float, default=60, help="each search's length (default 60)")
    parser.add_argument("--workers", type=positive_int, default=2, help="trials at once (default 2)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--rules", default="today,new", help="rule sets to run (default today,new)")
    parser.add_argument("--trials", type=positive_int, default=None,
                        help="run each search to this many trials, with no timeout, and read its first --minutes "
                             "(default: stop starting trials after --minutes)")
    parser.add_argument("--out", default="runs/first-hour", help="folder for the studies (default runs/first-hour)")
    parser.add_argument("--json", metavar="FILE", help="write the table here")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for rule in args.rules.split(","):
            db = out / f"{rule}-s{seed}.db"
            if not db.exists():  # a finished run is kept: rerunning the command only adds what is missing
                length = (["--trials", str(args.trials)] if args.trials else
                          ["--timeout", str(args.minutes * 60), "--trials", "100000"])
                command = [sys.executable, "runners/search.py", *data_options(args.data), "--val-teams", args.val_teams,
                           "--workers", str(args.workers), "--seed", str(seed), *length, "--storage", f"sqlite:///{db}",
                           *RULES[rule]]
                print(f"running {rule}, seed {seed}: {' '.join(command[1:])}", flush=True)
                with open(out / f"{rule}-s{seed}.log", "w") as log:
                    subprocess.run(command, cwd=Path(__file__).resolve().parents[1], stdout=log, stderr=log,
                                   check=False)
            rows.append({"rule": rule, "seed": seed, "storage": f"sqlite:///{db}"})
    whole_runs = {f"sqlite:///{db}": milestones(f"sqlite:///{db}") for db in sorted(out.glob("*-s*.db"))}
    for row in rows:
        # One bar for every rule set of a seed: the best hand design trained to the end in any of the seed's
        # studies under --out, run now or before (the new rules stop hand designs once far behind, at an error
        # above their full-budget one).
        bar = min(whole_runs[f"sqlite:///{db}"]["hand_design_best_px"] for db in out.glob(f"*-s{row['seed']}.db"))
        row["whole_run"] = whole_runs[row["storage"]]
        row.update(milestones(row["storage"], args.minutes, bar), bar_px=bar)
    print(format_table(rows))
    for seed in sorted({row["seed"] for row in rows}):
        print(f"seed {seed}: the hand designs' best, trained to the end: "
              f"{next(r['bar_px'] for r in rows if r['seed'] == seed):.3f} px")
    for row in rows:
        whole = row["whole_run"]
        best = f"{whole['best_px']:.3f} px" if whole["best_px"] is not None else "none yet"
        near = f", within 5% of it at {whole['within_5pct_min']:.1f} min" if whole["within_5pct_min"] else ""
        print(f"{row['rule']}, seed {row['seed']}, the whole run: {whole['finished']} trials in "
              f"{whole['minutes']:.1f} min, best {best}{near}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 0


def milestones(storage: str, minutes: float = math.inf, bar: float | None = None) -> dict:
    """Best error by minute mark, when a sampled trial first beat ``bar`` (default: every hand design the study
    trained to the end), when the best within ``minutes`` was first approached within 5%, trials finished in
    ``minutes`` (a longer study, e.g. a 200-trial search, is read as its first ``minutes``)."""
    study = optuna.load_study(study_name="keypoints", storage=storage)
    trials = study.get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    if not starts:
        return {"best": {}, "beat_hand_designs_min": None, "sampler_beat_min": None, "within_5pct_min": None,
                "finished": 0, "best_px": None,
                "hand_design_best_px": math.inf, "minutes": 0.0}
    origin = min(starts)
    done = sorted(((t.datetime_complete - origin).total_seconds() / 60, t.user_attrs["val_mean_px"],
                   "baseline" in t.user_attrs, t.user_attrs.get(CHOSEN_BY) == STARTING)
                  for t in trials if t.state == TrialState.COMPLETE and t.datetime_complete is not None
                  and "val_mean_px" in t.user_attrs and (t.datetime_complete - origin).total_seconds() <= minutes * 60)
    best = {mark: min((e for m, e, *_ in done if m <= mark), default=None) for mark in MARKS}
    reference = min((e for _, e, hand, _ in done if hand), default=math.inf)
    bar = reference if bar is None else bar
    beat = next((m for m, e, hand, _ in done if not hand and e < bar), None)
    searched = next((m for m, e, hand, start in done if not (hand or start) and e < bar), None)
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.datetime_complete is not None
                   and (t.datetime_complete - origin).total_seconds() <= minutes * 60 for t in trials)
    best_px = min((e for _, e, *_ in done), default=None)
    near = next((m for m, e, *_ in done if e <= NEAR * best_px), None) if best_px is not None else None
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    return {"best": best, "beat_hand_designs_min": beat, "sampler_beat_min": searched, "within_5pct_min": near,
            "finished": finished,
            "best_px": best_px, "hand_design_best_px": reference,
            "minutes": min(minutes, (max(ends) - origin).total_seconds() / 60) if ends else 0.0}


def format_table(rows: list[dict]) -> str:
    head = f"{'rules':<6} {'seed':>4} " + " ".join(f"{f'{m} min':>8}" for m in MARKS) + \
        f" {'beat hand designs':>18} {'the sampler beat':>16} {'within 5% of best':>18} {'trials':>6}"
    lines = [head]
    for row in rows:
        cells = " ".join(f"{row['best'].get(m):>8.3f}" if row["best"].get(m) is not None else f"{'-':>8}"
                         for m in MARKS)
        beat, own, near = (f"{row[key]:.1f} min" if row.get(key) is not None else "not yet"
                           for key in ("beat_hand_designs_min", "sampler_beat_min", "within_5pct_min"))
        lines.append(f"{row['rule']:<6} {row['seed']:>4} {cells} {beat:>18} {own:>16} {near:>18} {row['finished']:>6}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
