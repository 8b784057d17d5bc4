"""The ablation around a search's best config: the variants that each change one decision, the runs a study
of them holds, and the table of each change's effect on the held-out error over seeds.

No training here: ``runners/ablate.py`` trains the variants and keeps the runs in an Optuna study of its own.
Every value a decision is changed to comes from the search space (``search_space.space``,
``search_space.config``, the family registry), one decision at a time:

- ``family``: every other searched family at about the best's size: its own knobs at their defaults, the
  widest width whose weights fit in the best's bytes at the depth nearest the best's that has one (if no
  depth has, the family's smallest model, if it is within the cap);
- ``batch_norm``: flipped;
- ``head``: every other output head (a softmax best trained with spatial cross-entropy takes mse with another
  head, the only loss those heads have);
- ``batch_size``: the space's smallest and the original study's (``Config``'s default, 64), the learning rate
  scaled linearly (lr * bs / bs0) and clamped to the space's range;
- ``optimizer``: every other optimizer (sgd and rmsprop use the best's ``momentum``);
- ``interaction``: two decisions at once, for the two questions one-decision variants cannot answer. "Batch
  norm helps U-Net more than ResNet" needs both families with batch norm on and off: the best covers its own
  family at its batch norm and the ``batch_norm`` variant the other setting, so each of resnet and unet that is
  not the best's family gets its ``family`` variant with batch norm flipped
  (``family=resnet+batch_norm=False``). "A sigmoid head without batch norm collapses" needs a sigmoid head with
  and without it: unless the best's head is sigmoid, the sigmoid ``head`` variant with batch norm flipped
  (``head=sigmoid+batch_norm=False``).

A variant over the cap is left out, with the reason, as is an interaction variant whose config another
variant already has.

The runs' table and its verdict: ``studies.ablation``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from search_space.cap import fits
from search_space.config import HEADS, OPTIMIZERS, Config
from search_space.space import LR_RANGE, MAX_WIDTH, MIN_WIDTH
from studies.ablation import BATCH_SIZES, BEST


DECISIONS = ("family", "batch_norm", "head", "batch_size", "optimizer", "interaction")
INTERACTION_FAMILIES = ("resnet", "unet")  # the families "batch norm helps U-Net more than ResNet" compares


@dataclass(frozen=True)
class Variant:
    name: str  # "best", "family=unet", "family=unet+batch_norm=True": the ablation study's ``variant`` parameter
    decision: str  # the decision it changes, one of DECISIONS, or "best"
    change: str  # what changed, for a reader: "unet w19 d2", "batch 4, lr 1.2e-03 (x0.2)"
    config: Config


def variants(best: Config, max_bytes: int, weights: str = "float32") -> tuple[list[Variant], list[tuple[str, str]]]:
    """The best itself first, then one variant per other value of each decision, in ``DECISIONS`` order (the
    two-decision ``interaction`` ones last); and (name, reason) of the variants left out (over the cap, no width
    of the family fits it, or an interaction variant with the config of another). Sizes and the cap count
    ``weights``, the study's format."""
    from search_space.registry import searched_families

    target = min(fits(best, max_bytes, weights).size.weight_bytes, max_bytes)
    found: list[Variant | tuple[str, str]] = [Variant(BEST, BEST, "the best config itself", best)]
    for family in searched_families():
        if family != best.family:
            found.append(family_variant(best, family, target, max_bytes, weights))
    found.append(_one(best, "batch_norm", not best.batch_norm, f"batch norm {'off' if best.batch_norm else 'on'}"))
    found += [head_variant(best, head) for head in HEADS if head != best.head]
    found += [batch_variant(best, size) for size in BATCH_SIZES if size != best.batch_size]
    found += [_one(best, "optimizer", name, f"optimizer {name}") for name in OPTIMIZERS if name != best.optimizer]
    found += interaction_variants(best, target, max_bytes, weights)
    kept, skipped = [], []
    for item in found:
        if isinstance(item, tuple):
            skipped.append(item)
        elif not (fit := fits(item.config, max_bytes, weights)).ok:
            skipped.append((item.name, fit.reason))
        elif item.decision == "interaction" and any(v.config == item.config for v in kept):
            twin = next(v.name for v in kept if v.config == item.config)
            skipped.append((item.name, f"the same config as {twin}"))
        else:
            kept.append(item)
    return kept, skipped


def interaction_variants(best: Config, target: int, max_bytes: int,
                         weights: str = "float32") -> list[Variant | tuple[str, str]]:
    """The two-decision variants (the module docstring says which and why), or (name, why not) where the
    variant they build on cannot be made."""
    flipped = not best.batch_norm
    also = f"batch_norm={flipped}"
    switch = f"batch norm {'on' if flipped else 'off'}"
    found: list[Variant | tuple[str, str]] = []
    for family in INTERACTION_FAMILIES:
        if family == best.family:  # the best and the batch_norm variant have both settings already
            continue
        base = family_variant(best, family, target, max_bytes, weights)
        if isinstance(base, tuple):
            found.append((f"{base[0]}+{also}", base[1]))
        else:
            found.append(Variant(f"{base.name}+{also}", "interaction", f"{base.change}, {switch}",
                                 base.config.replace(batch_norm=flipped)))
    if best.head != "sigmoid":  # else the batch_norm variant is the sigmoid head with it flipped
        base = head_variant(best, "sigmoid")
        note = base.change.removeprefix("head sigmoid")  # the loss note last: the table cuts a change at 44 characters
        found.append(Variant(f"{base.name}+{also}", "interaction", f"head sigmoid, {switch}{note}",
                             base.config.replace(batch_norm=flipped)))
    return found


def _one(best: Config, decision: str, value, change: str, **also) -> Variant:
    return Variant(f"{decision}={value}", decision, change, best.replace(**{decision: value}, **also))


def family_variant(best: Config, family: str, target: int, max_bytes: int,
                   weights: str = "float32") -> Variant | tuple[str, str]:
    """``family`` at about ``target`` bytes, or (name, why not): at the depth nearest the best's that has a
    width within ``target``, the widest such width; if no depth has one, the family's smallest model within
    ``max_bytes``; bytes in ``weights``."""
    from search_space.registry import families, get_family

    spec = get_family(family)
    # Every family's own knobs at their defaults (the best's may be another family's), the new family's in range.
    knobs = {name: getattr(Config, name) for other in families() for name in get_family(other).knobs}
    knobs.update({name: min(max(getattr(Config, name), low), high) for name, (low, high) in spec.knobs.items()})
    depths = sorted(range(spec.depths[0], spec.depths[1] + 1), key=lambda depth: (abs(depth - best.depth), depth))
    bases = [best.replace(family=family, depth=depth, width=MIN_WIDTH, **knobs) for depth in depths]
    cfg = next((found for found in map(lambda base: widest_within(base, target, weights), bases) if found), None)
    if cfg is None:
        cfg = min(bases, key=lambda base: fits(base, max_bytes, weights).size.weight_bytes)
        if not fits(cfg, max_bytes, weights).ok:
            return f"family={family}", f"no {family} model fits the cap of {max_bytes} bytes"
    extra = "".join(f" {knob} {value}" for knob, value in knobs.items() if knob in spec.knobs)
    return Variant(f"family={family}", "family", f"{family} w{cfg.width} d{cfg.depth}{extra}", cfg)


def widest_within(base: Config, limit: int, weights: str = "float32") -> Config | None:
    """``base`` at the widest width of the space whose weights fit in ``limit`` bytes; None if none does."""
    widest = None
    for width in range(MIN_WIDTH, MAX_WIDTH + 1):  # bytes grow with the width: stop at the first too wide
        if not fits(base.replace(width=width), limit, weights).ok:
            break
        widest = base.replace(width=width)
    return widest


def head_variant(best: Config, head: str) -> Variant:
    loss = best.loss if head == "softmax" else "mse"
    note = f" (loss mse: {best.loss} needs softmax)" if loss != best.loss else ""
    return _one(best, "head", head, f"head {head}{note}", loss=loss)


def batch_variant(best: Config, batch_size: int) -> Variant:
    scaled = best.lr * batch_size / best.batch_size
    lr = min(max(scaled, LR_RANGE[0]), LR_RANGE[1])
    note = f", clamped to the space's {LR_RANGE[0]:g}-{LR_RANGE[1]:g}" if lr != scaled else ""
    return _one(best, "batch_size", batch_size,
                f"batch {batch_size}, lr {lr:.2e} (x{batch_size / best.batch_size:.3g}{note})", lr=lr)


def select(found: Sequence[Variant], wanted: str | None) -> list[Variant]:
    """The best and the variants ``wanted`` names (comma-separated decisions or variant names: a name has no
    comma, "family=resnet+batch_norm=True" included); all without it."""
    if not wanted:
        return list(found)
    items = [item.strip() for item in wanted.split(",") if item.strip()]
    known = sorted({v.decision for v in found} | {v.name for v in found})
    unknown = [item for item in items if item not in known]
    if unknown:
        raise ValueError(f"--variants {unknown[0]!r} is not a decision or variant of this ablation; known: "
                         + ", ".join(known))
    return [v for v in found if v.name == BEST or v.name in items or v.decision in items]
