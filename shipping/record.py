"""The export record (``shipping.export.export_record``'s JSON, or a bare config) as retrain, the ablation, adapt and
the benchmarks read it, every field checked; and what of its data a run holds out."""
from __future__ import annotations

import json
from pathlib import Path

from cli.exits import UserError
from cli.paths import input_path
from search_space.config import WEIGHT_FORMATS, Config
from search_space.registry import families

DEFAULT_QAT_EPOCHS = 3  # int8: quantization-aware epochs after calibration (retrain --qat-epochs)


def read_record(path: str | Path) -> dict:
    """export.py's JSON, every field retrain reads checked: the config's types, ranges and family, the cap, the
    seed. A bare config object (no "config" key) is read as the config."""
    path = input_path(path, "--config", kind="file")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"--config {path} is not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise UserError(f"--config {path} holds a JSON {type(record).__name__}; expected the object runners/export.py "
                        "writes")
    if "config" not in record:
        record = {"config": record}
    try:
        cfg = Config.from_dict(record["config"])
    except ValueError as error:
        raise UserError(f"--config {path}: {error}") from None
    if cfg.family not in families():
        raise UserError(f"--config {path}: unknown family {cfg.family!r}; known: {', '.join(families())}")
    for key in ("max_bytes", "seed"):
        value = record.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0
                                  or key == "max_bytes" and value == 0):
            raise UserError(f"--config {path}: {key} must be an integer {'> 0' if key == 'max_bytes' else '>= 0'}, "
                            f"got {json.dumps(value)}")
    if record.get("weights", "float32") not in WEIGHT_FORMATS:
        raise UserError(f"--config {path}: weights must be one of {', '.join(WEIGHT_FORMATS)}, got "
                        f"{json.dumps(record['weights'])}")
    return record


def held_out(data_split: dict, val_teams: list[str] | None = None, search_split: bool = False) -> dict | None:
    """``split`` keywords for what is held out: the search's split (``data_split``, the record's "data") with
    ``search_split``, else ``val_teams`` (a list, [] for a frame split), else None: ship mode (every crop trains)."""
    val_fraction = float(data_split.get("val_fraction", 0.1))
    seed = int(data_split.get("seed", 0))
    if search_split:
        return {"val_teams": data_split.get("val_teams"), "val_fraction": val_fraction, "seed": seed}
    if val_teams is None:
        return None
    return {"val_teams": list(val_teams) or None, "val_fraction": val_fraction, "seed": seed}
