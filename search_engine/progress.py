"""What a user watches during a search: a progress bar, one line per finished trial, a closing table."""
from __future__ import annotations

import math
import sys

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from search_space.config import BYTES_PER_KB
from search_space.registry import describe_knobs
from studies.attrs import BASELINE_ATTR, DIVERGED, OVERSIZE, SEEDS_ATTR, STATUS, STOPPED
from studies.reader import best_feasible, finished, is_feasible, trial_error, within_cap


def describe_config(cfg: dict) -> str:
    """One trial's config as its progress line shows it: "mobile w15 d3 x2 bn sigmoid sgd lr 1.4e-04 bs 11" (a
    family's own knobs as its file labels them: ``register_family(..., labels=...)``)."""
    parts = [f"{cfg['family']} w{cfg['width']} d{cfg['depth']}", *describe_knobs(cfg)]
    parts.append("bn" if cfg["batch_norm"] else "no-bn")
    parts.append(cfg["head"] + ("/ce" if cfg.get("loss") == "ce" else ""))
    parts.append(f"{cfg['optimizer']} lr {cfg['lr']:.1e} bs {cfg['batch_size']}")
    return " ".join(parts)


class Progress:
    """An Optuna callback: one line per finished trial above a bar (done / target, best, time left).

    Time left comes from tqdm's moving average of recent trial rates, not the run's average rate: the
    hand designs, in a study's first trials, train longer than the sampled trials, which often stop early,
    so the average overstates what is left for a long time (docs/decisions.md, "The search's rules").
    """

    def __init__(self, study: optuna.Study, target: int, max_bytes: int):
        self.target, self.max_bytes = target, max_bytes
        self.initial = finished(study)
        self.bar = tqdm(total=target, initial=self.initial, unit="trial", dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} trials [{elapsed}<{remaining}] {postfix}")
        self._update_best(study)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.bar.write(self.line(trial))
        sys.stdout.flush()  # one line per trial reaches a log file as it happens
        self.bar.update(finished(study) - self.bar.n)  # update(), not n =: feeds tqdm's rate average
        self._update_best(study)

    def _update_best(self, study: optuna.Study) -> None:
        best = best_feasible(study.get_trials(deepcopy=False), self.max_bytes)
        if best is not None:
            self.bar.set_postfix_str(f"best {trial_error(best):.2f} px (#{best.number})", refresh=False)
        self.bar.refresh()

    def line(self, trial: FrozenTrial) -> str:
        attrs = trial.user_attrs
        state = {OVERSIZE: "OVERSIZE", STOPPED: "STOPPED", DIVERGED: "DIVERGED"}.get(attrs.get(STATUS),
                                                                                    trial.state.name)
        text = f"#{trial.number:<4} {state:<8} "
        if "config" in attrs:
            text += f"{describe_config(attrs['config']):<58} {attrs['weight_bytes'] / BYTES_PER_KB:5.1f} KB"
        if "epochs" in attrs:
            text += f" | {attrs['epochs']:>3} ep {attrs.get('train_seconds', math.nan):6.1f} s"
        if "val_mean_px" in attrs:
            text += f" | val {attrs['val_mean_px']:.3f} px"
        if attrs.get("reason") and state in ("OVERSIZE", "DIVERGED"):
            text += f" | {attrs['reason']}"
        if BASELINE_ATTR in attrs:
            text += f"  [hand design {attrs[BASELINE_ATTR]}]"
        return text

    def close(self) -> None:
        self.bar.close()


def summary(study: optuna.Study, max_bytes: int, storage_url: str) -> str:
    """The closing table: best trial (or the Pareto set), the hand designs, and the export command."""
    trials = study.get_trials(deepcopy=False)
    count = {s: sum(t.state == s for t in trials) for s in TrialState}
    oversize = sum(t.user_attrs.get(STATUS) == OVERSIZE for t in trials)
    lines = [
        f"study {study.study_name!r}: {len(trials)} trials: {count[TrialState.COMPLETE]} complete, "
        f"{count[TrialState.PRUNED] - oversize} stopped early, {oversize} over the size cap, "
        f"{count[TrialState.FAIL]} failed",
    ]
    header = f"  {'trial':>6}  {'config':<58} {'KB':>6} {'mean px':>8} {'median':>7} {'PCK@2':>6}"

    def row(t: FrozenTrial, tag: str = "") -> str:
        a = t.user_attrs
        return (f"  #{t.number:<5}  {describe_config(a['config']):<58} {a['weight_bytes'] / BYTES_PER_KB:6.1f} "
                f"{a['val_mean_px']:8.3f} {a['val_median_px']:7.3f} {a['val_pck2']:6.1%} {tag}")

    if len(study.directions) > 1:
        front = [t for t in study.best_trials if is_feasible(t, max_bytes)]
        lines += ["Pareto set (validation error vs weight size):", header]
        lines += [row(t) for t in sorted(front, key=lambda t: t.user_attrs["weight_bytes"])]
    best = best_feasible(trials, max_bytes)
    if best is None:
        lines.append("no trial has completed within the size cap yet")
        return "\n".join(lines)
    seeds = best.user_attrs.get(SEEDS_ATTR)
    lines += ["best trial:", header, row(best, f"mean of 2 seeds: {seeds[0]:.3f}, {seeds[1]:.3f}" if seeds else "")]
    # The reference: complete hand designs, and those the reference bar stopped once their result was
    # settled (their error is the one at that epoch); a design copied from another study says so.
    baselines = [t for t in trials if BASELINE_ATTR in t.user_attrs and "val_mean_px" in t.user_attrs
                 and within_cap(t, max_bytes) and (is_feasible(t, max_bytes) or "stopped_by" in t.user_attrs)]
    if baselines:
        lines += ["hand designs (same split and budget; 'stopped': the error at the epoch the reference bar "
                  "stopped it):"]
        lines += [row(t, t.user_attrs[BASELINE_ATTR] + _reference_note(t))
                  for t in sorted(baselines, key=lambda t: t.number)]
    lines += milestones(trials, best, study.user_attrs.get("max_epochs"))
    lines += ["export it with:",
              f"  python runners/export.py --study {study.study_name} --storage {storage_url} "
              f"--trial {best.number} --out best.json"]
    return "\n".join(lines)


def _reference_note(trial: FrozenTrial) -> str:
    attrs = trial.user_attrs
    note = f" stopped after epoch {attrs.get('epochs')}" if "stopped_by" in attrs else ""
    return note + (f" (reused from {attrs['reused_from']})" if "reused_from" in attrs else "")


def milestones(trials: list[FrozenTrial], best: FrozenTrial, max_epochs: int | None) -> list[str]:
    """What early stopping saved, and how much search time it took to beat the hand designs and to reach
    (within 5%) the best. Search time is the time some trial was running, so the pause between a stopped
    run and the rerun that continued it does not count."""
    lines = []
    trained = [t for t in trials if t.state.is_finished() and "epochs" in t.user_attrs
               and t.user_attrs.get(STATUS) != OVERSIZE]
    if max_epochs and trained:
        again = [t for t in trained if SEEDS_ATTR in t.user_attrs]  # a new best's second seed: a whole run more
        budget = (len(trained) + len(again)) * max_epochs
        epochs = sum(t.user_attrs["epochs"] for t in trained) + len(again) * max_epochs
        second = f" + {len(again)} new bests trained again with a second seed" if again else ""
        lines.append(f"epochs trained: {epochs:,} of {budget:,} ({len(trained)} trained trials{second} x "
                     f"{max_epochs}; {1 - epochs / budget:.0%} saved by early stopping)")
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE and "val_mean_px" in t.user_attrs
                       and t.datetime_complete is not None), key=lambda t: t.datetime_complete)
    reference = [t.user_attrs["val_mean_px"] for t in complete if BASELINE_ATTR in t.user_attrs]
    best_px = best.user_attrs["val_mean_px"]
    steps = []
    if reference:
        beat = next((t for t in complete if BASELINE_ATTR not in t.user_attrs
                     and t.user_attrs["val_mean_px"] < min(reference)), None)
        steps.append(("better than every hand design", beat))
    steps.append(("within 5% of the best", next(t for t in complete if t.user_attrs["val_mean_px"] <= 1.05 * best_px)))
    steps.append(("the best", best))
    lines.append("reached (minutes of search: while a trial was running):")
    for what, t in steps:
        lines.append(f"  {what:<30} " + (f"#{t.number:<5} {search_minutes(trials, t.datetime_complete):6.1f} min"
                                         if t else "not yet"))
    return lines


def search_minutes(trials: list[FrozenTrial], until) -> float:
    """Minutes, up to ``until``, during which at least one trial was running (the union of their spans)."""
    spans = sorted((t.datetime_start, min(t.datetime_complete, until)) for t in trials
                   if t.datetime_start is not None and t.datetime_complete is not None and t.datetime_start < until)
    seconds, end = 0.0, None
    for start, stop in spans:
        if end is None or start > end:
            seconds += (stop - start).total_seconds()
            end = stop
        elif stop > end:
            seconds += (stop - end).total_seconds()
            end = stop
    return seconds / 60
