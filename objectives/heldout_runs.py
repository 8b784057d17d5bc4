"""The cache of leave-one-team-out runs: ``benchmarks/generalisation.py`` writes one JSON per run, and
``runners/retrain.py`` reads them to choose ship mode's epoch budget.

A run is keyed by the config, the recipe's training fields, the data (its decoded-cache id), the held-out team
and the seed; each file repeats its key, so readers can select runs without knowing the hash.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cones.cache import cache_dir
from deploy.atomic import write_json
from objectives.recipe import Recipe
from search_space.config import Config


def runs_dir() -> Path:
    return cache_dir() / "generalisation"


def run_path(cfg: Config, recipe: Recipe, data_id: str, team: str, seed: int) -> Path:
    key = hashlib.sha256(json.dumps([cfg.to_dict(), recipe.training(), data_id, team, seed],
                                    sort_keys=True).encode()).hexdigest()[:16]
    return runs_dir() / f"{team}-s{seed}-{key}.json"


def write_run(path: Path, cfg: Config, recipe: Recipe, data_id: str, team: str, seed: int, result: dict) -> dict:
    """Store ``result`` with its key, atomically; returns what was written."""
    record = {"config": cfg.to_dict(), "training": recipe.training(), "data_id": data_id, "team": team,
              "seed": seed, **result}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record, indent=None)
    return record


def read_run(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a run cut off while writing, or removed: train it again


def runs_by_epochs(cfg: Config, recipe: Recipe, data_id: str) -> dict[int, list[dict]]:
    """Cached runs of ``cfg`` on ``data_id`` whose recipe equals ``recipe``'s training fields but for the
    epochs, grouped by epoch budget."""
    want = {k: v for k, v in _as_json(recipe.training()).items() if k != "epochs"}
    config = _as_json(cfg.to_dict())
    found: dict[int, list[dict]] = {}
    for path in sorted(runs_dir().glob("*.json")):
        run = read_run(path)
        if (run is None or run.get("config") != config or run.get("data_id") != data_id
                or run.get("status") != "ok"):
            continue
        training = dict(run.get("training", {}))
        epochs = training.pop("epochs", None)
        if training == want and epochs is not None:
            found.setdefault(int(epochs), []).append(run)
    return found


def _as_json(value):
    return json.loads(json.dumps(value))  # tuples become lists, as in the stored runs
