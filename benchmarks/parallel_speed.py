"""Trials per hour of the search in process and on Ray Tune: the same fixed trial configs, in one run.

    python benchmarks/parallel_speed.py                                  # 8 configs, 2 epochs, 400 synthetic crops
    python benchmarks/parallel_speed.py --data ../shared/cones_dataset --epochs 1 --workers 2
    python benchmarks/parallel_speed.py --control                        # also in process with 1 thread

For each mode (``--workers 1``: in this process, all cores as torch threads; ``--workers N``: N trials at once
on a local Ray, cores / N threads each) it creates a fresh SQLite study, enqueues the same eight small
configs (every family, 8-77 KB), and runs the real command, ``runners/search.py --no-baselines
--no-early-stopping``, as a subprocess, so Python's and Ray's start-up are part of the time.

Prints per mode: wall seconds of the whole command, trials per hour, and CPU utilisation: CPU seconds of the
command and of every process under it (Ray's raylet, GCS and workers included), sampled from /proc, over
wall seconds x cores. 100% means every core busy with this benchmark. Other work on the machine (a running
search) slows both modes: the load average before the run is printed for that reason. ``--control`` adds
an in-process run with ``--threads 1``: it separates what parallel trials gain from what one trial's
threads lose (on a busy machine, torch threads that wait for each other at every operation).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from cli.args import doc_parser

REPO = Path(__file__).resolve().parents[1]
CONFIGS = (  # (family, width, depth, expand): every family, small to near the 80 KB cap
    ("resnet", 8, 2, 2), ("unet", 8, 3, 2), ("mobile", 8, 3, 2), ("resnet", 6, 1, 2),
    ("unet", 6, 2, 2), ("mobile", 12, 2, 2), ("resnet", 4, 3, 2), ("unet", 12, 2, 2),
)
SAMPLE_SECONDS = 0.25


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="parallel-speed-") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "KEYPOINT_NAS_CACHE": str(tmp / "cache")}
        data = args.data or write_synthetic(tmp / "export", args.crops)
        warm_cache(data, env)  # both modes read the decoded cache, neither pays for decoding
        print(f"{len(CONFIGS)} fixed configs, {args.epochs} epochs each, no early stopping, data {data}; "
              f"{cores} cores; load average before the run {os.getloadavg()[0]:.2f}")
        modes = [(f"in process, {cores} threads", ["--workers", "1"]),
                 (f"Ray, {args.workers} workers x {max(1, cores // args.workers)} thr", ["--workers", str(args.workers)])]
        if args.control:
            modes.append(("in process, 1 thread", ["--workers", "1", "--threads", "1"]))
        rows = []
        for index, (mode, extra) in enumerate(modes):
            url = f"sqlite:///{tmp / f'mode{index}.db'}"
            enqueue(url, args.epochs, env)
            command = [sys.executable, str(REPO / "runners" / "search.py"), "--data", str(data), "--storage", url,
                       "--trials", str(len(CONFIGS)), "--epochs", str(args.epochs), "--no-baselines",
                       "--no-early-stopping", *extra]
            wall, cpu = timed(command, env, tmp / f"mode{index}.log")
            rows.append((mode, wall, cpu))
    print(f"{'mode':<28} {'wall s':>7} {'trials/h':>9} {'CPU util':>9}")
    for mode, wall, cpu in rows:
        print(f"{mode:<28} {wall:>7.1f} {len(CONFIGS) / wall * 3600:>9.0f} {cpu / wall / cores:>9.0%}")
    print(f"Ray / in process: {rows[0][1] / rows[1][1]:.2f}x the trials per hour")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser(__doc__)
    parser.add_argument("--data", type=Path, default=None, help="a Supervisely export; default: synthetic crops")
    parser.add_argument("--crops", type=int, default=400, help="synthetic crops to generate (default 400)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per trial (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="trials at once on Ray (default 2)")
    parser.add_argument("--control", action="store_true", help="also run in process with 1 torch thread")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.crops < 20 or args.epochs < 1 or args.workers < 2:
        parser.error(f"need --crops >= 20, --epochs >= 1, --workers >= 2; got {args.crops}, {args.epochs}, "
                     f"{args.workers}")
    if args.data is not None and not (args.data / "ann").is_dir():
        parser.error(f"--data {args.data}: no ann/ folder; pass a Supervisely export")
    return args


def write_synthetic(root: Path, crops: int) -> Path:
    from cones.synthetic import make_synthetic, save_supervisely

    save_supervisely(make_synthetic(crops, seed=1), root)
    return root


def warm_cache(data: Path, env: dict) -> None:
    subprocess.run([sys.executable, "-c", "import sys; from cones.load import load_data; load_data(sys.argv[1])",
                    str(data)], env=env, check=True, stdout=subprocess.DEVNULL)


def enqueue(url: str, epochs: int, env: dict) -> None:
    """Create the study the way the runner does and put the fixed configs in its queue."""
    code = """
import sys
from search_engine.settings import TrialSettings
from search_engine.study import open_storage, open_study
from search_space.cap import max_bytes
from search_space.config import DEFAULT_MAX_KB, Config
from search_space.space import trial_params
from benchmarks.parallel_speed import CONFIGS

settings = TrialSettings(max_bytes=max_bytes(DEFAULT_MAX_KB), max_epochs=int(sys.argv[2]))
study = open_study(open_storage(sys.argv[1]), "keypoints", settings, early_stopping=False)
for family, width, depth, expand in CONFIGS:
    cfg = Config(family=family, width=width, depth=depth, expand=expand, batch_size=32, weight_decay=1e-6)
    study.enqueue_trial(trial_params(cfg))
"""
    subprocess.run([sys.executable, "-c", code, url, str(epochs)], env=env, check=True, cwd=REPO)


def timed(command: list[str], env: dict, log: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process tree) of one command; fails with its log if it fails."""
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        cpu: dict[int, float] = {}
        while process.poll() is None:
            cpu.update(tree_cpu_seconds(process.pid))
            time.sleep(SAMPLE_SECONDS)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{log.read_text()[-3000:]}")
    return wall, sum(cpu.values())


def tree_cpu_seconds(root: int) -> dict[int, float]:
    """pid -> user + system CPU seconds so far, for ``root`` and every process under it (Linux /proc).

    Ray's workers are children of its raylet, not of the command, and are not reaped by it in time for
    ``getrusage(RUSAGE_CHILDREN)`` to see them: hence sampling.
    """
    tick = os.sysconf("SC_CLK_TCK")
    parents, times = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])  # fields after the name: state, ppid, ... utime (12th), stime (13th)
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {root}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return {pid: times[pid] for pid in tree if pid in times}


if __name__ == "__main__":
    sys.exit(main())
