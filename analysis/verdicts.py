"""The original study's five questions, each judged twice: from the search's own trials and from the ablation
around its best config (``runners/ablate.py``), with one verdict rule for both and a flag where they disagree.

The rule is the ablation table's (``studies.ablation.verdict``): a difference of centres beyond the
combined spread sqrt(sd_a^2 + sd_b^2) of the sample standard deviations decides, anything within it is
"cannot tell at this spread". The ablation's centre is the mean over the seeds both arms ran, as in its table;
the search's is the group median of the completed full-budget trials (``analysis.questions``' groups, where a
few collapsed runs would drag a mean), and a group of fewer than ``analysis.questions.MIN_GROUP`` trials cannot
tell. The search's groups vary every other decision too, so its spread is wide: it decides less often than the
ablation.

    from analysis.verdicts import answer_twice
    for row in answer_twice(rows, info).rows:
        print(row.claim, row.search.verdict, row.ablation.verdict if row.ablation else "-", row.agree)

Only reads studies (never torch: ``studies.ablation`` is torch-free).
"""
from __future__ import annotations

import math
import shlex
import statistics
from dataclasses import dataclass
from typing import Callable, Sequence

import optuna

from analysis.questions import COLLAPSE_PCK3, BATCH_BINS, GroupStats, group_stats
from analysis.study_data import StudyInfo, TrialRow, full_budget, row_trial
from search_space.config import HEADS
from studies.ablation import BATCH_SIZES, BEST, finished_runs, spread, verdict
from studies.attrs import ABLATION_OF, SEED_ATTR, VARIANT_ATTR
from studies.reader import best_feasible, is_usable

SUPPORTED, REFUTED, CANNOT_TELL = "supported", "refuted", "cannot tell at this spread"
ABLATION_SUFFIX = "-ablation"  # runners/ablate.py names an ablation "<study>-ablation" unless --name


@dataclass(frozen=True)
class Verdict:
    verdict: str  # SUPPORTED, REFUTED or CANNOT_TELL
    figures: str  # the numbers it stands on, or why it cannot tell


@dataclass(frozen=True)
class TwiceRow:
    key: str
    claim: str
    meaning: str  # what "supported" and "refuted" mean for this claim
    search: Verdict
    ablation: Verdict | None  # None: no ablation study of this search

    @property
    def agree(self) -> bool | None:
        """None when either source cannot tell (or there is no ablation): there is nothing to agree on."""
        if self.ablation is None or CANNOT_TELL in (self.search.verdict, self.ablation.verdict):
            return None
        return self.search.verdict == self.ablation.verdict


@dataclass(frozen=True)
class Ablation:
    """An ablation study's finished runs, read without torch: (variant, seed) -> error (None: diverged) and
    -> 1 when the run collapsed (PCK@3px below ``COLLAPSE_PCK3``) or diverged, else 0."""
    name: str
    source: str  # "study NAME trial N"
    best: dict  # the best config the variants change
    configs: dict  # variant -> its config (a dict), the variants not run yet included
    changes: dict  # variant -> what it changes, for a reader
    errors: dict
    failed: dict

    def arm(self, decision: str, value, failures: bool = False) -> tuple[str, dict]:
        """(label, seed -> result) of the run whose ``decision`` is ``value``: the best or its variant."""
        name = BEST if self.best.get(decision) == value else f"{decision}={value}"
        label = f"best ({decision} {value})" if name == BEST else name
        return label, self._runs(name, failures)

    def arm_where(self, label: str, failures: bool = False, **values) -> tuple[str, dict]:
        """(label, seed -> result) of the run whose config has ``values`` (family="resnet", batch_norm=False):
        of the best and the variants that have them, the one whose config differs from the best's in the fewest
        fields (the best first on a tie, then the study's order), so that the arm changes as little else as
        there is; the label gains its name. No config has them: (label, {})."""
        configs = {BEST: self.best, **self.configs}
        matching = [name for name, cfg in configs.items() if all(cfg.get(k) == v for k, v in values.items())]
        if not matching:
            return label, {}
        name = min(matching, key=lambda n: sum(configs[n].get(k) != self.best.get(k)
                                               for k in set(configs[n]) | set(self.best)))
        return f"{label} ({name})", self._runs(name, failures)

    def _runs(self, name: str, failures: bool) -> dict:
        runs = self.failed if failures else self.errors
        return {seed: result for (variant, seed), result in runs.items() if variant == name}


@dataclass(frozen=True)
class Twice:
    rows: list[TwiceRow]
    ablation: Ablation | None
    how_to_run: str  # the command that runs (or continues) the ablation


# ---------------------------------------------------------------------------------------------- the rule


def rule_row(a: Sequence[float], b: Sequence[float], centre: Callable) -> dict:
    """``studies.ablation.verdict``'s row for arm ``a`` against arm ``b``, centred by ``centre``: the
    difference and combined spread of ``studies.ablation.compare``, which divides by the best's mean (zero
    for a rate of collapses) and so cannot serve here."""
    both = len(a) > 1 and len(b) > 1
    return {"seeds": list(a), "mean_px": centre(a) if a else None,
            "diff_px": centre(a) - centre(b) if a and b else None,
            "combined_spread_px": math.hypot(spread(a), spread(b)) if both else None}


def beats(said: str, row: dict) -> str:
    """"A beats B": supported when A's error is lower beyond the spread, refuted when higher beyond it (or A
    diverged on every seed)."""
    return SUPPORTED if said == "better" else REFUTED if said.startswith("worse") else CANNOT_TELL


NOISE_SMALL = 0.10  # "hardly matters" needs the noise itself to be small: a spread at most 10% of the error


def hardly_matters(said: str, row: dict) -> str:
    """"A and B hardly differ": supported when the difference is within the spread (smaller than the
    run-to-run noise) and that spread is small (``NOISE_SMALL`` of the error: a wide spread hides real
    differences, so "within it" is no evidence of none), refuted when beyond it either way; otherwise (no
    spread: one seed, too few trials; a wide one) cannot tell."""
    if said == CANNOT_TELL:  # the ablation's words for "within the spread"
        small = row["mean_px"] and row["combined_spread_px"] <= NOISE_SMALL * abs(row["mean_px"])
        return SUPPORTED if small else CANNOT_TELL
    return REFUTED if said == "better" or said.startswith("worse") else CANNOT_TELL


def collapses(said: str, row: dict) -> str:
    """"A collapses" (rows of 1 = collapsed or diverged, 0 = trained): supported when A fails more often than
    the reference beyond the spread; refuted when A fails no more often than the reference (or less beyond
    the spread): the claim says it collapses, and it does not."""
    if said.startswith("worse"):
        return SUPPORTED
    if said == "better" or (said == CANNOT_TELL and row["diff_px"] <= 0):
        return REFUTED
    return CANNOT_TELL


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """"A beats every other": supported when it beats each, refuted when any beats it, else cannot tell."""
    said = [v.verdict for v in verdicts]
    overall = REFUTED if REFUTED in said else SUPPORTED if all(s == SUPPORTED for s in said) else CANNOT_TELL
    return Verdict(overall, "; ".join(v.figures for v in verdicts))


# ---------------------------------------------------------------------------------------- from the search


def _groups(used: list[TrialRow], key: Callable, names: dict | None = None) -> Callable[[str], GroupStats]:
    """name -> that group of ``analysis.questions.group_stats``; a group no trial falls in is empty."""
    found = {s.name: s for s in group_stats(used, key, names)}
    return lambda name: found.get(name, GroupStats(name, ()))


def _median_px(s: GroupStats) -> str:
    return f"{s.name} median {s.median:.2f} px (sd {spread(s.errors):.2f}, n={s.n})"


def _failed_of(s: GroupStats) -> str:
    return f"{s.name} {sum(s.errors):.0f} of {s.n} runs collapsed or diverged (sd {spread(s.errors):.2f})"


def search_versus(a: GroupStats, b: GroupStats, to_claim: Callable, centre: Callable = statistics.median,
                  show: Callable = _median_px) -> Verdict:
    """Group ``a`` against group ``b`` of the search's trials by the one rule; a thin group cannot tell."""
    thin = [s.describe() for s in (a, b) if not s.enough]
    if thin:
        return Verdict(CANNOT_TELL, "; ".join(thin))
    row = rule_row(a.errors, b.errors, centre)
    return Verdict(to_claim(verdict(row, is_best=False), row),
                   f"{show(a)} vs {show(b)}: {row['diff_px']:+.2f}, combined spread {row['combined_spread_px']:.2f}")


def _used(rows: list[TrialRow], info: StudyInfo) -> list[TrialRow]:
    return full_budget(rows, info.max_epochs)


def _bn_groups(used: list[TrialRow]) -> Callable[[str], GroupStats]:
    return _groups(used, lambda r: bool(r.params.get("batch_norm")), {True: "with BN", False: "without BN"})


def search_family(rows: list[TrialRow], info: StudyInfo) -> Verdict:
    group = _groups(_used(rows, info), lambda r: r.family)
    return search_versus(group("resnet"), group("unet"), beats)


def search_batch_norm(rows: list[TrialRow], info: StudyInfo) -> Verdict:
    group = _bn_groups(_used(rows, info))
    return search_versus(group("with BN"), group("without BN"), beats)


def search_batch_norm_unet(rows: list[TrialRow], info: StudyInfo) -> Verdict:
    """U-Net's gain from batch norm (median without - median with) against ResNet's, the spread of all four."""
    used = _used(rows, info)
    pairs = {f: _bn_groups([r for r in used if r.family == f]) for f in ("unet", "resnet")}
    groups = {f: (pair("with BN"), pair("without BN")) for f, pair in pairs.items()}
    thin = [f"{f} {s.describe()}" for f, pair in groups.items() for s in pair if not s.enough]
    if thin:
        return Verdict(CANNOT_TELL, "; ".join(thin))
    gain = {f: off.median - on.median for f, (on, off) in groups.items()}
    combined = math.sqrt(sum(spread(s.errors) ** 2 for pair in groups.values() for s in pair))
    # "better" for unet: its gain exceeds resnet's, i.e. resnet's minus unet's is below -spread
    row = {"seeds": [0], "mean_px": gain["unet"], "diff_px": gain["resnet"] - gain["unet"],
           "combined_spread_px": combined}
    return Verdict(beats(verdict(row, is_best=False), row),
                   f"batch norm lowers the median by {gain['unet']:.2f} px in unet and {gain['resnet']:.2f} px in "
                   f"resnet ({gain['unet'] - gain['resnet']:+.2f} px for unet), combined spread of the four groups "
                   f"{combined:.2f} px")


def _failures(rows: list[TrialRow], batch_norm: bool, max_epochs: int | None) -> tuple[float, ...]:
    """1 per sigmoid run with(out) batch norm that collapsed or diverged, 0 per one that trained: the runs
    ``analysis.questions.collapse_sentence`` counts (trained to the end, or diverged)."""
    mine = [r for r in rows if r.params.get("head") == "sigmoid" and bool(r.params.get("batch_norm")) == batch_norm]
    trained = [r for r in full_budget(mine, max_epochs) if r.error is not None]
    return (tuple(float(r.metrics.get("val_pck3", 1.0) < COLLAPSE_PCK3) for r in trained)
            + tuple(1.0 for r in mine if r.outcome == "diverged"))


def search_collapse(rows: list[TrialRow], info: StudyInfo) -> Verdict:
    return search_versus(GroupStats("sigmoid without BN", _failures(rows, False, info.max_epochs)),
                         GroupStats("sigmoid with BN", _failures(rows, True, info.max_epochs)), collapses,
                         statistics.fmean, _failed_of)


def search_softmax(rows: list[TrialRow], info: StudyInfo) -> Verdict:
    group = _groups(_used(rows, info), lambda r: r.params.get("head"))
    return combine([search_versus(group("softmax"), group(head), beats) for head in HEADS if head != "softmax"])


def search_batch_size(rows: list[TrialRow], info: StudyInfo) -> Verdict:
    """The smallest doubling bin of batch sizes against the largest, as ``analysis.questions`` bins them."""
    (low, top), (bottom, high) = BATCH_BINS[0], BATCH_BINS[-1]
    small, large = f"batch {low}-{top}", f"batch {bottom}-{high}"

    def size_bin(r: TrialRow) -> str | None:
        size = r.params.get("batch_size")
        return None if size is None else small if size <= top else large if size >= bottom else None

    group = _groups(_used(rows, info), size_bin)
    return search_versus(group(small), group(large), hardly_matters)


# -------------------------------------------------------------------------------------- from the ablation


def _px_of(label: str, runs: dict) -> str:
    usable = [e for e in runs.values() if e is not None]
    diverged = f", {len(runs) - len(usable)} diverged" if len(usable) < len(runs) else ""
    if not usable:
        return f"{label} diverged on all {len(runs)} seeds"
    sd = spread(usable)
    return (f"{label} mean {statistics.fmean(usable):.3f} px (sd {'-' if sd is None else f'{sd:.3f}'}, "
            f"{len(runs)} seeds{diverged})")


def _rate_of(label: str, runs: dict) -> str:
    return f"{label} {sum(runs.values())} of {len(runs)} seeds collapsed or diverged"


def ablation_versus(ab: Ablation, a: tuple[str, dict], b: tuple[str, dict], to_claim: Callable,
                    show: Callable = _px_of) -> Verdict:
    """Arm ``a`` against arm ``b`` (label, seed -> error or 0/1) over the seeds both ran, by the one rule."""
    missing = [label for label, runs in (a, b) if not runs]
    if missing:
        return Verdict(CANNOT_TELL, f"{' and '.join(missing)}: no finished run in ablation {ab.name!r}")
    (_, ra), (_, rb) = a, b
    common = sorted(s for s in ra if ra[s] is not None and rb.get(s) is not None)
    row = rule_row([ra[s] for s in common], [rb[s] for s in common], statistics.fmean)
    usable = [e for e in ra.values() if e is not None]
    row.update(seeds=sorted(ra), mean_px=statistics.fmean(usable) if usable else None)
    said = verdict(row, is_best=False)
    if all(e is None for e in rb.values()) and row["mean_px"] is not None:
        said = "better"  # b diverged on every seed, a trained
    diff = "" if row["diff_px"] is None else f": {row['diff_px']:+.3f} over {len(common)} common seeds"
    sd = "" if row["combined_spread_px"] is None else f", combined spread {row['combined_spread_px']:.3f}"
    return Verdict(to_claim(said, row), f"{show(*a)} vs {show(*b)}{diff}{sd} ({said})")


def ablation_family(ab: Ablation) -> Verdict:
    return ablation_versus(ab, ab.arm("family", "resnet"), ab.arm("family", "unet"), beats)


def ablation_batch_norm(ab: Ablation) -> Verdict:
    return ablation_versus(ab, ab.arm("batch_norm", True), ab.arm("batch_norm", False), beats)


def _missing(ab: Ablation, arms: Sequence[tuple[str, dict]]) -> Verdict | None:
    """Cannot tell, naming the arms without a finished run (an ablation from before the interaction variants has
    no such variant); None when every arm has one."""
    missing = [label for label, runs in arms if not runs]
    if not missing:
        return None
    return Verdict(CANNOT_TELL, f"{' and '.join(missing)}: no finished run in ablation {ab.name!r}; rerunning "
                                f"runners/ablate.py with the same options adds {'it' if len(missing) == 1 else 'them'}")


def ablation_batch_norm_unet(ab: Ablation) -> Verdict:
    """U-Net's gain from batch norm (mean without - mean with, over the seeds both arms trained) against
    ResNet's, each arm the config nearest the best's with that family and batch norm (the best, its batch_norm
    variant, the other family's variant and its interaction variant); the spread is sqrt of the sum of the four
    arms' sample variances over those seeds. An arm that diverged on every seed has no mean: cannot tell."""
    arms = {(family, bn): ab.arm_where(f"{family} {'with' if bn else 'without'} BN", family=family, batch_norm=bn)
            for family in ("unet", "resnet") for bn in (True, False)}
    missing = _missing(ab, list(arms.values()))
    if missing:
        return missing
    dead = [label for label, runs in arms.values() if all(e is None for e in runs.values())]
    if dead:
        return Verdict(CANNOT_TELL, f"{' and '.join(dead)} diverged on every seed: no mean to take a gain from "
                                    "(the ablation table shows which arm trains at all)")
    gains, spreads, figures = {}, [], []
    for family in ("unet", "resnet"):
        (on_label, on), (off_label, off) = arms[family, True], arms[family, False]
        common = sorted(s for s in on if on[s] is not None and off.get(s) is not None)
        if len(common) < 2:
            return Verdict(CANNOT_TELL, f"{on_label} and {off_label} both trained on {len(common)} seed(s): a "
                                        "spread needs two")
        with_bn, without = [on[s] for s in common], [off[s] for s in common]
        gains[family] = statistics.fmean(without) - statistics.fmean(with_bn)
        spreads += [spread(with_bn), spread(without)]
        figures.append(f"{on_label} mean {statistics.fmean(with_bn):.3f} px, {off_label} "
                       f"{statistics.fmean(without):.3f} px over {len(common)} common seeds: batch norm gains "
                       f"{gains[family]:+.3f} px")
    diff = gains["unet"] - gains["resnet"]
    combined = math.sqrt(sum(sd ** 2 for sd in spreads))
    said = SUPPORTED if diff > combined else REFUTED if diff < -combined else CANNOT_TELL
    return Verdict(said, "; ".join(figures) + f"; unet's gain - resnet's {diff:+.3f} px, combined spread of the "
                                              f"four arms {combined:.3f}")


def ablation_collapse(ab: Ablation) -> Verdict:
    """Sigmoid without batch norm against sigmoid with it on how often runs fail, each arm the config nearest
    the best's with a sigmoid head and that batch norm (the best, its head or batch_norm variant, or the
    sigmoid interaction variant), whether the best has batch norm or not."""
    without = ab.arm_where("sigmoid without BN", failures=True, head="sigmoid", batch_norm=False)
    with_bn = ab.arm_where("sigmoid with BN", failures=True, head="sigmoid", batch_norm=True)
    return _missing(ab, (without, with_bn)) or ablation_versus(ab, without, with_bn, collapses, _rate_of)


def ablation_softmax(ab: Ablation) -> Verdict:
    return combine([ablation_versus(ab, ab.arm("head", "softmax"), ab.arm("head", head), beats)
                    for head in HEADS if head != "softmax"])


def ablation_batch_size(ab: Ablation) -> Verdict:
    small, large = BATCH_SIZES
    return ablation_versus(ab, ab.arm("batch_size", small), ab.arm("batch_size", large), hardly_matters)


# ------------------------------------------------------------------------------------- the five questions


@dataclass(frozen=True)
class Question:
    key: str
    claim: str
    meaning: str
    search: Callable[[list[TrialRow], StudyInfo], Verdict]
    ablation: Callable[[Ablation], Verdict]


FAILS = f"a run fails when it diverges or puts fewer than {COLLAPSE_PCK3:.0%} of keypoints within 3 px"
QUESTIONS = (
    Question("family", "ResNet beats U-Net",
             "supported: ResNet's error is lower than U-Net's beyond the spread; refuted: U-Net's is lower beyond it",
             search_family, ablation_family),
    Question("batch_norm", "Batch norm helps",
             "supported: the error with batch norm is lower than without beyond the spread; refuted: higher beyond it",
             search_batch_norm, ablation_batch_norm),
    Question("batch_norm_unet", "... and helps U-Net more than ResNet",
             "supported: batch norm lowers U-Net's error (search: median; ablation: mean over seeds, U-Net and "
             "ResNet near the best's config) by more than ResNet's, beyond the combined spread of the four groups; "
             "refuted: by less, beyond it", search_batch_norm_unet, ablation_batch_norm_unet),
    Question("sigmoid_collapse", "A sigmoid head without batch norm collapses",
             f"{FAILS}; supported: sigmoid-without-BN runs fail more often than sigmoid-with-BN runs (ablation: the "
             "configs nearest the best's with a sigmoid head) beyond the spread; refuted: no more often",
             search_collapse, ablation_collapse),
    Question("softmax", "A softmax head helps",
             "supported: softmax's error is lower than each other head's beyond the spread; refuted: another head's "
             "is lower beyond it", search_softmax, ablation_softmax),
    Question("batch_size", "Batch size hardly matters",
             f"search: batch {BATCH_BINS[0][0]}-{BATCH_BINS[0][1]} vs {BATCH_BINS[-1][0]}-{BATCH_BINS[-1][1]}; "
             f"ablation: {BATCH_SIZES[0]} vs {BATCH_SIZES[1]}, lr scaled; supported: they differ by no more than the "
             "spread (a wide spread makes this easy: read the figures); refuted: by more",
             search_batch_size, ablation_batch_size),
)


# ---------------------------------------------------------------------------------------------- reading


def find_ablation(storage: str, name: str) -> optuna.Study | None:
    """The ablation of study ``name`` in ``storage``: ``<name>-ablation``, else one whose ``ablation_of`` names
    the study (an ablation run with --name); None when there is none."""
    names = optuna.get_all_study_names(storage=storage)
    if name + ABLATION_SUFFIX in names:
        study = optuna.load_study(study_name=name + ABLATION_SUFFIX, storage=storage)
        if ABLATION_OF in study.user_attrs:
            return study
    for summary in optuna.get_all_study_summaries(storage=storage, include_best_trial=False):
        if str(summary.user_attrs.get(ABLATION_OF, "")).startswith(f"study {name} trial "):
            return optuna.load_study(study_name=summary.study_name, storage=storage)
    return None


def read_ablation(study: optuna.Study) -> Ablation:
    """The finished runs as ``studies.ablation.finished_runs`` keeps them (each pair's first result), and
    whether each collapsed or diverged; the variants' configs from the study's ``variants`` attribute (an older
    study without it: those its runs recorded)."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    errors = finished_runs(trials)
    failed, changes, recorded = {}, {}, {}
    for t in trials:
        key = (t.user_attrs.get(VARIANT_ATTR), t.user_attrs.get(SEED_ATTR))
        changes.setdefault(key[0], t.user_attrs.get("change"))
        if key[0] is not None and "config" in t.user_attrs:
            recorded.setdefault(key[0], t.user_attrs["config"])
        if key in errors and key not in failed and (is_usable(t) or t.user_attrs.get("status") == "diverged"):
            failed[key] = 1 if errors[key] is None else int(t.user_attrs.get("val_pck3", 1.0) < COLLAPSE_PCK3)
    attrs = study.user_attrs
    return Ablation(study.study_name, str(attrs.get(ABLATION_OF)), dict(attrs.get("best_config") or {}),
                    dict(attrs.get("variants") or recorded), changes, errors, failed)


def ablate_command(info: StudyInfo) -> str:
    """``runners/ablate.py``'s command for this search (its --data defaults to the study's data)."""
    return f"python runners/ablate.py --study {shlex.quote(info.name)} --storage {shlex.quote(info.storage)}"


def answer_twice(rows: list[TrialRow], info: StudyInfo) -> Twice:
    """Each question from the search's trials, and from its ablation study when the storage holds one."""
    found = find_ablation(info.storage, info.name)
    ablation = read_ablation(found) if found is not None else None
    answers = [TwiceRow(q.key, q.claim, q.meaning, q.search(rows, info),
                        q.ablation(ablation) if ablation is not None else None) for q in QUESTIONS]
    return Twice(answers, ablation, ablate_command(info))


def stale_note(twice: Twice, rows: list[TrialRow], info: StudyInfo) -> str | None:
    """The ablation is around an earlier best when the search went on after it: say which, and how to redo it."""
    best = best_feasible(rows, info.max_bytes, trial_of=row_trial)
    if twice.ablation is None or best is None or twice.ablation.source.endswith(f" trial {best.number}"):
        return None
    return (f"The ablation is around {twice.ablation.source}; the search's best is now trial {best.number}: "
            f"{twice.how_to_run} --name {info.name}-ablation-{best.number} ablates it.")
