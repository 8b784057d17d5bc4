"""Stricter early stopping, replayed on a finished study: what it would save and which good trials it would lose.

    python benchmarks/pruning_replay.py --storage sqlite:///runs/real200.db --study real-tuwr

Successive halving as the search ran it until issue 16 (``SuccessiveHalvingPruner(min_resource=1, reduction_factor=rf)``:
rungs at epochs 1, rf, rf^2, ...; at a rung a sampled trial goes on if its error is within the best
1/rf of the errors that trials reached there, itself included; the hand designs never compete) is
replayed on each sampled trial's recorded learning curve, in trial order, under other rules:
a larger reduction factor, or competing only against the last N trials at the rung. A failed trial (cut
off by Ctrl-C, or diverged) competes with the values it reached, as it did in the study, but is not counted.

The sampled trials stay those of the study, although a sampler would have sampled others under
another rule, so read the result as "what this rule would have cut from this study". A trial that the
study stopped at some epoch has no curve beyond it; where a rule would let it go on, the replay stops it
there too and counts it as "unknown".

The rows "epochs + ref" and "seconds + ref" replay today's rule (``search_engine.rungs``): rungs in epochs or in
training seconds, the hand designs' curves joining the pool while fewer than rf sampled trials reached a rung.
In these studies the hand designs ran first, so the replay knows their whole curves from the start; a trial
that recorded only its total seconds is taken to have trained at an even pace.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from cli.args import doc_parser, positive_int
from search_engine.rungs import Curve, competes, epoch_rungs, judge
from search_engine.trial import SETTLE_EPOCHS, reference_bar
from studies.attrs import BASELINE_ATTR


@dataclass(frozen=True)
class Rule:
    reduction_factor: int
    window: int | None = None  # compete only against the last N trials at the rung; None: the whole history
    # search_engine.rungs' rule ("epochs" or "seconds": the hand designs judge until rf peers reached a rung);
    # None: Optuna's SuccessiveHalvingPruner
    unit: str | None = None

    def __str__(self) -> str:
        if self.unit:
            return f"rf {self.reduction_factor}, {self.unit} + ref"
        return f"rf {self.reduction_factor}" + (f", last {self.window}" if self.window else ", all trials")


@dataclass
class Replay:
    epochs: int = 0
    seconds: float = 0.0  # training seconds (0 for trials that recorded none)
    to_the_end: int = 0
    unknown: int = 0
    kept: tuple[int, ...] = ()  # trial numbers that reached the last epoch


def replay(trials: list[FrozenTrial], rule: Rule, max_epochs: int, references: list[FrozenTrial] = ()) -> Replay:
    """``rule`` replayed on the sampled ``trials`` in order; ``references``: the hand designs (``rule.unit`` only),
    known from the start, as they were when they ran first."""
    if rule.unit:
        return _replay_rungs(trials, rule, max_epochs, [c for c in map(Curve.of, references) if c])
    checkpoints = epoch_rungs(max_epochs, rule.reduction_factor)
    seen: dict[int, list[float]] = {epoch: [] for epoch in checkpoints}
    out, kept = Replay(), []
    for trial in trials:
        curve = trial.user_attrs["history"]
        stop, stopped = len(curve), False
        for epoch in checkpoints:
            if epoch > len(curve):
                break
            competing = seen[epoch] + [curve[epoch - 1]]
            if rule.window:
                competing = competing[-rule.window:]
            seen[epoch].append(curve[epoch - 1])
            # Optuna's rule: with fewer than rf values, only the best goes on.
            index = max(len(competing) // rule.reduction_factor - 1, 0)
            if curve[epoch - 1] > sorted(competing)[index]:
                stop, stopped = epoch, True
                break
        if trial.state == TrialState.FAIL:
            continue  # cut off or diverged: its rung values compete, as in Optuna, but it is not counted
        if not stopped and stop < max_epochs:
            out.unknown += 1
        out.epochs += stop
        out.seconds += seconds_to(trial, stop)
        if stop == max_epochs:
            kept.append(trial.number)
    out.to_the_end, out.kept = len(kept), tuple(kept)
    return out


def seconds_to(trial: FrozenTrial, epoch: int) -> float:
    """The trial's training seconds to the end of ``epoch`` (an even pace past its recorded curve)."""
    curve = Curve.of(trial)
    if curve is None or not curve.seconds:
        return 0.0
    if epoch <= len(curve.seconds):
        return curve.seconds[epoch - 1]
    return curve.seconds[-1] / len(curve.seconds) * epoch


def _replay_rungs(trials: list[FrozenTrial], rule: Rule, max_epochs: int, references: list[Curve]) -> Replay:
    """``search_engine.rungs.judge`` after each recorded epoch of each trial, against the earlier trials' curves as
    the replay left them."""
    out, kept, peers = Replay(), [], []
    for trial in trials:
        curve = Curve.of(trial)
        stop, stopped = len(curve.errors), False
        judged = competes(trial)  # fair exploration's trials and the starting points pass the rungs
        unjudged = ()
        for epoch in range(1, min(len(curve.errors), max_epochs - 1) + 1 if judged else 0):
            so_far = Curve(curve.errors[:epoch], curve.seconds[:epoch] if curve.seconds else None)
            verdict = judge(so_far, peers, references, max_epochs, rule.reduction_factor, rule.unit, unjudged)
            if verdict.stop is not None:
                stop, stopped = epoch, True
                break
            unjudged = verdict.unjudged
        if competes(trial):
            peers.append(Curve(curve.errors[:stop], curve.seconds[:stop] if curve.seconds else None))
        if trial.state == TrialState.FAIL:
            continue
        if not stopped and stop < max_epochs:
            out.unknown += 1
        out.epochs += stop
        out.seconds += seconds_to(trial, stop)
        if stop == max_epochs:
            kept.append(trial.number)
    out.to_the_end, out.kept = len(kept), tuple(kept)
    return out


def replay_reference_bar(trials: list[FrozenTrial], factor: float) -> tuple[list[int], int]:
    """The reference bar (``search_engine.trial.reference_bar``) with ``factor``, in trial order, each trial judged
    against the curves of the trials before it (hand designs included, and judged too): the trials it stops
    and the epochs that saves."""
    stopped, saved, earlier = [], 0, []
    for trial in trials:
        curve = trial.user_attrs["history"]
        for epoch in range(SETTLE_EPOCHS, len(curve)):
            if reference_bar(curve[epoch - 1], epoch, trial.number, earlier, factor):
                stopped.append(trial.number)
                saved += len(curve) - epoch
                break
        earlier.append(trial)
    return stopped, saved


def build_parser() -> argparse.ArgumentParser:
    p = doc_parser(__doc__)
    p.add_argument("--storage", required=True, help="Optuna storage URL of the finished search")
    p.add_argument("--study", required=True, help="the search's study to replay")
    p.add_argument("--top", type=positive_int, default=5, help="how many of the study's best trials to follow (default 5)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study, storage=args.storage)
    max_epochs = study.user_attrs["max_epochs"]
    replayed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                      TrialState.FAIL))
                if t.user_attrs.get("history") and BASELINE_ATTR not in t.user_attrs]
    sampled = [t for t in replayed if t.state != TrialState.FAIL]
    complete = sorted((t for t in sampled if t.state == TrialState.COMPLETE), key=lambda t: t.user_attrs["val_mean_px"])
    top = [t.number for t in complete[:args.top]]
    actual = sum(len(t.user_attrs["history"]) for t in sampled)
    print(f"study {args.study!r}: {len(sampled)} sampled trials, {max_epochs} epochs at most; actual: {actual:,} "
          f"epochs trained, {len(complete)} to the end; its best {args.top}: {', '.join(f'#{n}' for n in top)}")
    hand = [t for t in study.get_trials(deepcopy=False) if BASELINE_ATTR in t.user_attrs and Curve.of(t)]
    print(f"{'rule':<24} {'epochs':>7} {'saved':>6} {'train min':>9} {'saved':>6} {'to the end':>10} {'unknown':>8}  "
          f"best {args.top} kept")
    budget = len(sampled) * max_epochs
    budget_seconds = sum(seconds_to(t, max_epochs) for t in sampled) or 1.0
    for rule in (Rule(3), Rule(4), Rule(5), Rule(3, window=30), Rule(3, window=10), Rule(3, unit="epochs"),
                 Rule(3, unit="seconds")):
        r = replay(replayed, rule, max_epochs, references=hand)
        kept = [f"#{n}" for n in top if n in r.kept]
        print(f"{str(rule):<24} {r.epochs:>7,} {1 - r.epochs / budget:>6.0%} {r.seconds / 60:>9.1f} "
              f"{1 - r.seconds / budget_seconds:>6.0%} {r.to_the_end:>10} {r.unknown:>8}  "
              f"{len(kept)} ({', '.join(kept) or 'none'})")
    every = [t for t in replayed if t.state != TrialState.FAIL] + [
        t for t in study.get_trials(deepcopy=False) if BASELINE_ATTR in t.user_attrs and t.user_attrs.get("history")]
    every.sort(key=lambda t: t.number)
    print(f"\nthe reference bar alone (from epoch {SETTLE_EPOCHS}, against the trials before, hand designs included):")
    for factor in (2.0, 3.0, 4.0):
        stopped, saved = replay_reference_bar(every, factor)
        lost = [f"#{n}" for n in top if n in stopped]
        print(f"  factor {factor:g}: stops {len(stopped)} of {len(every)} trials, saves {saved:,} epochs; best "
              f"{args.top} stopped: {', '.join(lost) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
