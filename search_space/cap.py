"""The size cap, one rule: a model fits when its deployed weights, counted exactly in the study's weight format
(float32, or int8 with its scales: ``search_space.size``), are at most the cap's bytes; and the one way an oversize
model is described. The search, its trials, the export, retrain, the ablation, the ONNX export and the benchmarks
all ask ``fits`` (or ``within`` for a size already known), so an int8 study's best is judged in int8 bytes
everywhere.

Importing it never imports torch (the study reader and the export use ``within``); ``fits`` measures, which builds
the model on torch's meta device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from search_space.config import BYTES_PER_KB, DEFAULT_MAX_KB, Config

if TYPE_CHECKING:
    from search_space.size import ModelSize


def max_bytes(max_kb: float = DEFAULT_MAX_KB) -> int:
    """The cap in bytes of ``--max-kb`` (1 KB = 1024 bytes)."""
    if not max_kb > 0:
        raise ValueError(f"--max-kb must be > 0, got {max_kb}")
    return int(max_kb * BYTES_PER_KB)


def within(nbytes: int | None, max_bytes: int) -> bool:
    """The rule: ``nbytes`` of weights fit a cap of ``max_bytes`` (a size not known never does)."""
    return nbytes is not None and nbytes <= max_bytes


def over_cap(nbytes: int, max_bytes: int, weights: str = "float32") -> str:
    """The error text of a model over the cap: "90124 bytes of float32 weights (88.0 KB), over the cap of 81920 bytes
    (80 KB)"; a command puts what it is about before it and what to do after it."""
    return (f"{nbytes} bytes of {weights} weights ({nbytes / BYTES_PER_KB:.1f} KB), over the cap of {max_bytes} bytes "
            f"({max_bytes / BYTES_PER_KB:g} KB)")


@dataclass(frozen=True)
class Fit:
    """A config's exact size in a weight format against a cap: ``ok``, and, when it is not, ``error`` and ``reason``."""

    size: "ModelSize"
    max_bytes: int
    weights: str = "float32"

    @property
    def ok(self) -> bool:
        return within(self.size.weight_bytes, self.max_bytes)

    @property
    def error(self) -> str:
        return over_cap(self.size.weight_bytes, self.max_bytes, self.weights)

    @property
    def reason(self) -> str:
        """The short form a trial over the cap records (user attribute ``reason``), as studies have always held it."""
        return f"{self.size.weight_bytes} weight bytes > cap {self.max_bytes}"


def fits(cfg: Config, max_bytes: int, weights: str = "float32") -> Fit:
    """``cfg`` measured in ``weights`` against ``max_bytes``: ``fits(cfg, cap, weights).ok``."""
    from search_space.size import measure  # builds the model: torch loads here

    return Fit(measure(cfg, weights=weights), max_bytes, weights)
