"""Ablation around a search's best config: change one decision at a time (two, for two questions), retrain each
variant and the best itself with several seeds on the search's split, and report what each change does to the
held-out error.

    python runners/ablate.py --study real-tuwr --storage sqlite:///runs/real200.db --data ../shared/cones_dataset
    python runners/ablate.py --config best.json --data ../shared/cones_dataset --val-teams tuwr --seeds 3
    python runners/ablate.py --study real-tuwr --storage sqlite:///runs/real200.db --list    # the variants only

The variants (other families at about the best's bytes, batch norm flipped, other heads, batch sizes, optimizers,
and the pairs two questions need) train like the search's trials, without early stopping, over several seeds,
as a study of their own (``<study>-ablation``); rerunning trains only what is missing. The table gives each
change's difference to the best and a verdict. Details: docs/search.md, "Ablation".
"""
from __future__ import annotations

if __name__ == "__main__":  # first: Ctrl-C while the imports below run is one line and exit 130
    from cli.exits import stop_on_ctrl_c
    stop_on_ctrl_c("ablate")

import argparse
import dataclasses
import json
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from cli.args import add_data_argument, add_val_teams_argument, doc_parser, positive_int
from cli.exits import EXIT_INTERRUPTED, UserError, run
from cli.paths import DEFAULT_STORAGE, check_out_file, check_storage, sqlite_path
from deploy.atomic import write_json
from objectives.train import train
from search_engine.ablation import DECISIONS, Variant, select, variants
from search_engine.progress import describe_config
from search_engine.running import QuietExpectedFailures, interrupt
from search_engine.settings import DEFAULT_EPOCHS, TrialSettings
from search_engine.storage import storage_faults
from search_engine.study import open_storage
from search_engine.trial import TrialDiverged, int8_metrics, int8_scored, record_result, size_attrs
from search_space.cap import fits, max_bytes
from search_space.config import BYTES_PER_KB, DEFAULT_MAX_KB, Config
from search_space.size import measure
from shipping.export import PickError, export_record, pick_trial
from shipping.record import held_out, read_record
from studies.ablation import finished_runs, format_table, name_width, table
from studies.attrs import ABLATION_OF, INTERRUPTED, SEED_ATTR, STATUS, VARIANT_ATTR
from studies.reader import is_usable, read_study



@dataclass(frozen=True)
class Plan:
    """What one ablation is: the best config and its variants, the budget, the seeds and the split."""

    source: str  # "study real-tuwr trial 188" or "config best.json"
    name: str  # the ablation's own study
    best: Config
    max_bytes: int
    weights: str  # what the cap counts and the runs are scored in: the study's format (float32 or int8)
    epochs: int
    seeds: tuple[int, ...]
    holdout: dict  # cones.splits.split keywords
    found: tuple[Variant, ...]  # every variant of the best: the study's ``variant`` choices
    chosen: tuple[Variant, ...]  # the ones this run trains (--variants)
    skipped: tuple[tuple[str, str], ...]  # (variant, why it is left out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    json_out = None
    if args.json:
        inputs = [Path(p) for p in (sqlite_path(args.storage), args.config, *(args.data or [])) if p]
        json_out = check_out_file(args.json, "--json", force=args.force, inputs=inputs)
    record, source = read_source(args)
    plan = make_plan(args, record, source)
    print(describe_plan(plan, record))
    if args.list:
        return 0
    train_set, val_set, data_id = read_data(args, record, plan)
    with storage_faults(args.storage, "ablate", []):  # a full disk, a lost server: one line, exit 1
        study = open_ablation(args.storage, plan, data_id)
        if not train_queued(study, plan, queue_runs(study, plan), args.threads, train_set, val_set):
            return EXIT_INTERRUPTED
        rows = table(plan.chosen, finished_runs(study.get_trials(deepcopy=False)), plan.seeds, plan.weights)
    print(f"\nablation {plan.name!r} of {plan.source}: {plan.epochs} epochs, seeds "
          f"{', '.join(map(str, plan.seeds))}, held-out mean px at the last epoch\n{format_table(rows)}")
    width = max([name_width(rows)] + [len(name) for name, _ in plan.skipped])
    for name, reason in plan.skipped:
        print(f"{name:<{width}} left out: {reason}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        write_json(json_out, summary_record(plan, args.storage, rows), indent=1)
        print(f"wrote {json_out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = doc_parser(__doc__)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--study", help="the search's study: its best feasible trial is ablated")
    source.add_argument("--config", help="a config JSON instead (runners/export.py's, or a bare config object)")
    p.add_argument("--storage", default=DEFAULT_STORAGE,
                   help=f"Optuna storage of the search and of the ablation's study (default {DEFAULT_STORAGE})")
    add_data_argument(p, "Supervisely export or COCO .json (default: the study's data)")
    add_val_teams_argument(p, "hold these teams out instead of the study's split (space- or comma-separated)",
                           optional_value=True)
    p.add_argument("--seeds", type=positive_int, default=3, help="training seeds per variant (default 3)")
    p.add_argument("--epochs", type=positive_int, help="epochs of every run (default: the best trial's)")
    p.add_argument("--variants", help=f"comma-separated decisions ({', '.join(DECISIONS)}) or variant names as "
                                      "--list prints them, to train (default: all)")
    p.add_argument("--name", help="the ablation's study (default: <study>-ablation)")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: torch's choice)")
    p.add_argument("--list", action="store_true", help="print the variants and stop")
    p.add_argument("--json", metavar="FILE", help="write the table here (an existing file only with --force)")
    p.add_argument("--force", action="store_true", help="write over --json if it exists")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    return p.parse_args(argv)


def read_source(args: argparse.Namespace) -> tuple[dict, str]:
    """(export.py's record of the best, a label): from the study's best feasible trial, or --config."""
    if args.config:
        return read_record(args.config), f"config {args.config}"
    check_storage(args.storage, must_exist=True)
    try:
        study = read_study(args.storage, args.study)
        if ABLATION_OF in study.user_attrs:
            raise UserError(f"--study {args.study!r} is an ablation ({study.user_attrs[ABLATION_OF]}); give the "
                            "search's study")
        trial = pick_trial(study)
        return export_record(study, trial, args.storage), f"study {study.study_name} trial {trial.number}"
    except (PickError, ValueError) as error:  # StudyNotFound, a config this version does not know
        raise UserError(str(error)) from None


def make_plan(args: argparse.Namespace, record: dict, source: str) -> Plan:
    search = record.get("search", {})
    best = Config.from_dict(record["config"])
    cap = record.get("max_bytes") or max_bytes(DEFAULT_MAX_KB)
    weights = record.get("weights", "float32")  # the study's format: an int8 study's best is judged in int8 bytes
    fit = fits(best, cap, weights)
    if not fit.ok:
        raise UserError(f"{source}: {fit.error}; ablate a config within it")
    epochs = args.epochs or search.get("epochs") or DEFAULT_EPOCHS  # else the search's default budget
    first = int(record.get("seed", search.get("seed", 0)))
    # retrain's rule for what is held out: the search's split, or --val-teams
    holdout = held_out(dict(record.get("data") or {}), val_teams=args.val_teams, search_split=args.val_teams is None)
    found, skipped = variants(best, cap, weights)
    try:
        chosen = select(found, args.variants)
    except ValueError as error:
        raise UserError(str(error)) from None
    name = args.name or f"{search.get('study') or Path(args.config or 'config').stem}-ablation"
    return Plan(source, name, best, cap, weights, int(epochs), tuple(range(first, first + args.seeds)), holdout,
                tuple(found), tuple(chosen), tuple(skipped))


def describe_plan(plan: Plan, record: dict) -> str:
    searched = record.get("search", {}).get("val_mean_px")
    held = (f"teams {', '.join(plan.holdout['val_teams'])}" if plan.holdout["val_teams"]
            else f"{plan.holdout['val_fraction']:.0%} of the frames (split seed {plan.holdout['seed']})")
    lines = [f"ablation of {plan.source}: {describe_config(plan.best.to_dict())}"
             + (f", {searched:.3f} px in the search" if searched is not None else ""),
             f"{len(plan.chosen)} variants x {len(plan.seeds)} seeds = {len(plan.chosen) * len(plan.seeds)} runs of "
             f"{plan.epochs} epochs, held out: {held}"]
    width = max(len(name) for name in [v.name for v in plan.chosen] + [name for name, _ in plan.skipped])
    wide = max(len(v.change) for v in plan.chosen)
    lines += [f"  {v.name:<{width}} {v.change:<{wide}} {measure(v.config, weights=plan.weights).kb:5.1f} KB"
              for v in plan.chosen]
    lines += [f"  {name:<{width}} left out: {reason}" for name, reason in plan.skipped]
    return "\n".join(lines)


def read_data(args: argparse.Namespace, record: dict, plan: Plan):
    """(training crops, held-out crops, the data's fingerprint) of --data, else of the study's data."""
    from cones.load import describe_sources, load_data, source_list
    from cones.splits import describe_split, split

    path = args.data
    searched = (record.get("data") or {}).get("data", "synthetic")
    if path is None and searched != "synthetic":
        if not all(p.exists() for p in source_list(searched)):
            raise UserError(f"the search's data {describe_sources(searched)} is not here; pass --data DIR (the same "
                            "export)")
        path = searched
    try:
        data = load_data(path)
        train_set, val_set = split(data, **plan.holdout)
    except ValueError as error:  # not an export, an unknown team
        raise UserError(str(error)) from None
    print(describe_split(train_set, val_set))
    return train_set, val_set, data.fingerprint()


def open_ablation(url: str, plan: Plan, data_id: str) -> optuna.Study:
    """The ablation's study, created or continued; a continued one must be the same ablation, though it may
    gain variants (a newer version of ``search_engine.ablation.variants``): each variant it had keeps its config."""
    check_storage(url, must_exist=False)
    setting = json.loads(json.dumps({
        ABLATION_OF: plan.source, "best_config": plan.best.to_dict(), "max_bytes": plan.max_bytes,
        **({"weights": plan.weights} if plan.weights != "float32" else {}),  # float32 ablations predate the key
        "epochs": plan.epochs, "holdout": plan.holdout, "data_id": data_id,
        "variants": {v.name: v.config.to_dict() for v in plan.found}}))
    study = optuna.create_study(study_name=plan.name, storage=open_storage(url), direction="minimize",
                                load_if_exists=True, sampler=optuna.samplers.RandomSampler(seed=0))
    earlier = study.user_attrs
    if ABLATION_OF not in earlier and study.get_trials(deepcopy=False):
        raise UserError(f"study {plan.name!r} in {url} is not an ablation; pick another --name")
    for key, value in setting.items():  # what the source is called may change (a moved file); what it is may not
        if key in (ABLATION_OF, "variants") or key not in earlier or earlier[key] == value:
            continue
        raise UserError(f"ablation {plan.name!r} was run with another {key} ({json.dumps(earlier[key])[:120]}); "
                        "use the same options to continue it, or --name NEW for a new ablation")
    had = earlier.get("variants", {})
    for name, config in had.items():
        if name in setting["variants"] and setting["variants"][name] != config:
            raise UserError(f"ablation {plan.name!r} was run with another config of variant {name} "
                            f"({json.dumps(config)[:120]}); use the same options to continue it, or --name NEW for "
                            "a new ablation")
    setting["variants"] = {**had, **setting["variants"]}  # the earlier ones first, as the table lists them
    for key, value in setting.items():
        study.set_user_attr(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_mean_px"])
    return study


def queue_runs(study: optuna.Study, plan: Plan) -> int:
    """Enqueue the (variant, seed) runs not yet finished nor queued; returns how many runs wait to train (runs an
    interrupted earlier command queued count too, even for variants outside this --variants)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # a killed run's trial: FAIL, queued again by the retry callback
    trials = study.get_trials(deepcopy=False)
    done = finished_runs(trials)
    queued = {(t.user_attrs.get(VARIANT_ATTR), t.user_attrs.get(SEED_ATTR)): t.state for t in trials
              if t.state in (TrialState.WAITING, TrialState.RUNNING)}
    wanted = [(v, seed) for seed in plan.seeds for v in plan.chosen]  # seed by seed: early rows are complete
    for variant, seed in wanted:
        if (variant.name, seed) not in done and (variant.name, seed) not in queued:
            study.enqueue_trial({VARIANT_ATTR: variant.name, SEED_ATTR: seed}, user_attrs={
                VARIANT_ATTR: variant.name, SEED_ATTR: seed, "decision": variant.decision, "change": variant.change,
                **size_attrs(variant.config, plan.max_bytes, plan.weights)[0]})
    waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    finished = sum((v.name, seed) in done for v, seed in wanted)
    running = sum(state == TrialState.RUNNING for state in queued.values())
    print(f"ablation {plan.name!r}: {finished} of {len(wanted)} runs finished earlier, {waiting} to train"
          + (f"; {running} running in another process (or killed under a minute ago: rerun later)" if running else ""))
    return waiting


def train_queued(study: optuna.Study, plan: Plan, total: int, threads: int | None, train_set, val_set) -> bool:
    """Train the ``total`` queued runs; False when Ctrl-C or SIGTERM stopped it (finished runs are kept)."""
    if not total:
        return True
    settings = TrialSettings(max_bytes=plan.max_bytes, max_epochs=plan.epochs, threads=threads, weights=plan.weights)
    previous_sigterm = signal.signal(signal.SIGTERM, interrupt)  # `kill` stops like Ctrl-C
    try:
        with QuietExpectedFailures() as quiet:  # a diverged run's line says so; no traceback for it
            study.optimize(RunVariant(variant_choices(study, plan), settings, train_set, val_set), n_trials=total,
                           callbacks=[quiet, RunProgress(plan, total)], catch=(TrialDiverged,))
    except KeyboardInterrupt:
        print("\nablate: interrupted: the running run is recorded FAIL (status 'interrupted'), finished runs are "
              "kept; rerun the same command to continue", file=sys.stderr)
        return False
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
    return True


def variant_choices(study: optuna.Study, plan: Plan) -> list[str]:
    """The choices of the ``variant`` parameter: those the study's runs have it with (Optuna refuses other
    choices for a parameter of the same study, so variants gained later are not among them), else the plan's."""
    for trial in study.get_trials(deepcopy=False):
        if VARIANT_ATTR in trial.distributions:
            return list(trial.distributions[VARIANT_ATTR].choices)
    return [v.name for v in plan.found]


class RunVariant:
    """The objective: train the queued (variant, seed) as the search trains a trial, for the whole budget."""

    def __init__(self, names: list[str], settings: TrialSettings, train_set, val_set):
        self.names, self.settings = names, settings  # the ``variant`` parameter's choices
        self.train_set, self.val_set = train_set, val_set

    def __call__(self, trial: optuna.Trial) -> float:
        attrs = trial.user_attrs
        if VARIANT_ATTR not in attrs:
            raise RuntimeError("another process took this ablation's queued runs; run one ablate command per "
                               "ablation at a time")
        if attrs[VARIANT_ATTR] in self.names:  # else a variant gained later: only its user attribute names it
            trial.suggest_categorical(VARIANT_ATTR, self.names)
        seed = trial.suggest_int(SEED_ATTR, attrs[SEED_ATTR], attrs[SEED_ATTR])
        cfg = Config.from_dict(attrs["config"])
        try:
            result = train(cfg, self.train_set, self.val_set, self.settings.max_epochs, seed=seed,
                           augmentation=self.settings.augmentation, threads=self.settings.threads)
            if self.settings.weights == "int8" and result.status == "ok":  # scored as the int8 study scores a trial
                settings = dataclasses.replace(self.settings, seed=seed)  # calibrated with the run's seed
                result = int8_scored(trial, result, int8_metrics(result, cfg, settings, self.train_set, self.val_set))
        except KeyboardInterrupt:
            trial.set_user_attr(STATUS, INTERRUPTED)
            raise
        return record_result(trial, result, self.settings, attrs["weight_bytes"] / BYTES_PER_KB)


class RunProgress:
    """An Optuna callback: one line per finished run with the pace and the best mean so far."""

    def __init__(self, plan: Plan, total: int):
        self.plan, self.total, self.done = plan, total, 0
        self.started = time.perf_counter()

    def __call__(self, study: optuna.Study, trial) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.total - self.done)
        attrs = trial.user_attrs
        result = f"{attrs['val_mean_px']:.3f} px" if is_usable(trial) else attrs.get("status", trial.state.name)
        rows = table(self.plan.chosen, finished_runs(study.get_trials(deepcopy=False)), self.plan.seeds,
                     self.plan.weights)
        leader = min((r for r in rows if r["mean_px"] is not None), key=lambda r: r["mean_px"], default=None)
        seeds = len(leader["seeds"]) if leader else 0
        best = (f"best so far {leader['variant']} {leader['mean_px']:.3f} px (mean of {seeds} run"
                f"{'s' if seeds > 1 else ''})" if leader else "no result yet")
        print(f"[{self.done}/{self.total}] {attrs.get(VARIANT_ATTR)} seed {attrs.get(SEED_ATTR)}: {result} "
              f"({attrs.get('train_seconds', 0):.1f} s) | {tqdm.format_interval(elapsed)} elapsed, about "
              f"{tqdm.format_interval(left)} left | {best}", flush=True)


def summary_record(plan: Plan, storage: str, rows: list[dict]) -> dict:
    return {"ablation_study": plan.name, "storage": storage, "source": plan.source,
            "best_config": plan.best.to_dict(), "max_bytes": plan.max_bytes, "weights": plan.weights,
            "epochs": plan.epochs,
            "seeds": list(plan.seeds), "holdout": plan.holdout,
            "verdict_rule": "better/worse when |mean - best's mean over the same seeds| > sqrt(sd_best^2 + sd^2) "
                            "(sample sd over seeds), else cannot tell at this spread",
            "left_out": [{"variant": name, "reason": reason} for name, reason in plan.skipped],
            "rows": rows}


if __name__ == "__main__":
    sys.exit(run(main, "ablate"))
