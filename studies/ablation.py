"""Reading an ablation study (``runners/ablate.py``): each (variant, seed) run's held-out error, and the table
with its verdicts. Torch-free (a variant's size is measured, lazily, only for the table).

The verdict: a change is better (or worse) when its mean over seeds is lower (higher) than the best's mean over
the same seeds by more than the combined spread, sqrt(sd_best^2 + sd_variant^2) of the sample standard
deviations over seeds (the spread of the difference of two single runs), else "cannot tell at this spread";
one seed has no spread to judge by.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from search_space.config import BYTES_PER_KB, Config
from search_space.space import BATCH_SIZE_RANGE
from studies.attrs import DIVERGED, SEED_ATTR, STATUS, VARIANT_ATTR
from studies.reader import is_usable, trial_error


BEST = "best"
# The space's smallest batch and the original study's (the hand designs trained with Config's default).
BATCH_SIZES = (BATCH_SIZE_RANGE[0], Config.batch_size)


def finished_runs(trials: Iterable) -> dict[tuple[str, int], float | None]:
    """(variant, seed) -> held-out mean px of each finished run of an ablation study, None for a run that
    diverged; a pair run twice (a retried run) keeps its first result."""
    runs: dict[tuple[str, int], float | None] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        key = (trial.user_attrs.get(VARIANT_ATTR), trial.user_attrs.get(SEED_ATTR))
        if key[0] is None or key in runs:
            continue
        if is_usable(trial):
            runs[key] = trial_error(trial)
        elif trial.user_attrs.get(STATUS) == DIVERGED:
            runs[key] = None
    return runs


def spread(errors: Sequence[float]) -> float | None:
    """Sample standard deviation over seeds; None for fewer than two."""
    return float(np.std(errors, ddof=1)) if len(errors) > 1 else None


def table(chosen: Sequence, runs: dict[tuple[str, int], float | None], seeds: Sequence[int],
          weights: str = "float32") -> list[dict]:
    """One row per variant (``search_engine.ablation.Variant``, the best first): its runs over ``seeds``, mean and
    spread, the difference to the best's mean over the same seeds and the verdict; its size in ``weights``."""
    from search_space.size import measure  # builds the model: torch loads here

    best = {s: runs.get((BEST, s)) for s in seeds}
    rows = []
    for variant in chosen:
        mine = {s: runs[(variant.name, s)] for s in seeds if (variant.name, s) in runs}
        errors = [e for e in mine.values() if e is not None]
        common = [s for s, e in mine.items() if e is not None and best.get(s) is not None]
        row = {"variant": variant.name, "decision": variant.decision, "change": variant.change,
               "config": variant.config.to_dict(),
               "weight_bytes": measure(variant.config, weights=weights).weight_bytes,
               "seeds": sorted(mine), "errors_px": [mine[s] for s in sorted(mine)], "diverged": len(mine) - len(errors),
               "mean_px": float(np.mean(errors)) if errors else None, "std_px": spread(errors),
               "min_px": min(errors, default=None), "max_px": max(errors, default=None)}
        row.update(compare([mine[s] for s in common], [best[s] for s in common]))
        row["verdict"] = verdict(row, variant.name == BEST)
        rows.append(row)
    return rows


def compare(mine: list[float], best: list[float]) -> dict:
    """The difference of means over the seeds both ran, relative to the best's, and the combined spread."""
    if not mine:
        return {"common_seeds": 0, "diff_px": None, "relative": None, "combined_spread_px": None}
    diff = float(np.mean(mine) - np.mean(best))
    spreads = [spread(mine), spread(best)]
    combined = math.hypot(*spreads) if None not in spreads else None
    return {"common_seeds": len(mine), "diff_px": diff, "relative": diff / float(np.mean(best)),
            "combined_spread_px": combined}


def verdict(row: dict, is_best: bool) -> str:
    if not row["seeds"]:
        return "not run"
    if row["mean_px"] is None:
        return "worse: diverged on every seed"
    if is_best:
        return "the reference"
    if row["diff_px"] is None:
        return "cannot tell: the best has no run on the same seeds"
    if row["combined_spread_px"] is None:
        return "cannot tell: one seed has no spread"
    if abs(row["diff_px"]) <= row["combined_spread_px"]:
        return "cannot tell at this spread"
    return "better" if row["diff_px"] < 0 else "worse"


def format_table(rows: Sequence[dict]) -> str:
    """The table a person reads: change, size, runs, mean +- spread, min-max, against the best, verdict."""
    width = name_width(rows)
    lines = [f"{'variant':<{width}} {'change':<44} {'KB':>5} {'runs':>4} {'mean px':>8} {'sd':>6} {'min-max':>13} "
             f"{'vs best':>15}  verdict"]
    for row in rows:
        mean = _px(row["mean_px"], 8)
        sd = _px(row["std_px"], 6)
        span = f"{row['min_px']:.3f}-{row['max_px']:.3f}" if row["min_px"] is not None else "-"
        against = (f"{row['diff_px']:+.3f} ({row['relative']:+.1%})" if row["diff_px"] is not None
                   and row["variant"] != BEST else "")
        runs = f"{len(row['seeds'])}" + (f" ({row['diverged']} diverged)" if row["diverged"] else "")
        lines.append(f"{row['variant']:<{width}} {row['change'][:44]:<44} {row['weight_bytes'] / BYTES_PER_KB:5.1f} "
                     f"{runs:>4} {mean} {sd} {span:>13} {against:>15}  {row['verdict']}")
    return "\n".join(lines)


def name_width(rows: Sequence[dict]) -> int:
    """The variant column's width: the longest name ("family=resnet+batch_norm=False"), at least 18."""
    return max([18] + [len(row["variant"]) for row in rows])


def _px(value: float | None, width: int) -> str:
    return f"{value:{width}.3f}" if value is not None else f"{'-':>{width}}"
