"""Training throughput of each family, against the machine's dense float32 matmul rate, in one run.

    python benchmarks/train_throughput.py [--threads 2] [--batch 64] [--seconds 8]

For each family it trains (the real training step: augmentation, heatmap targets, loss, backward, Adam)
at the sizes of the two hand designs (ResNet base 8 = 19,479 and U-Net base 8 = 17,663 parameters; the
other families at the depth/width nearest those sizes), and prints images/s, training GFLOP/s (3 x forward
MACs x 2 FLOP per image) and that rate as a fraction of a 1024 x 1024 float32 matmul on the same threads.
Goal: the ResNet hand design at >= 60% of the matmul rate.
"""
from __future__ import annotations

import argparse
import time

import torch

from cli.args import doc_parser, positive_float, positive_int
from cones.augment import AugmentConfig
from cones.synthetic import make_synthetic
from objectives.train import lr_schedule, make_optimizer, train_epoch
from search_space.config import Config
from search_space.registry import searched_families
from search_space.size import measure
from search_space.space import FAMILY_DEPTHS

HAND_DESIGNS = {"resnet": Config(family="resnet", width=8, depth=2), "unet": Config(family="unet", width=8, depth=3)}


def matmul_gflops(seconds: float) -> float:
    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    for _ in range(3):
        a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return 2 * 1024**3 * count / (time.perf_counter() - started) / 1e9


def nearest(family: str, target_bytes: int) -> Config:
    """The family's (depth, width) whose size is nearest ``target_bytes``."""
    low, high = FAMILY_DEPTHS[family]
    candidates = [Config(family=family, width=w, depth=d) for d in range(low, high + 1) for w in range(4, 33)]
    return min(candidates, key=lambda c: abs(measure(c).weight_bytes - target_bytes))


def images_per_second(cfg: Config, data, seconds: float) -> float:
    from search_space.registry import create_model, memory_format

    torch.manual_seed(0)
    fmt = memory_format(cfg)
    model = create_model(cfg).to(memory_format=fmt)
    optimizer = make_optimizer(cfg, model)
    scheduler = lr_schedule(optimizer, "constant", 1)
    generator = torch.Generator().manual_seed(0)
    warmup = data.subset(range(2 * cfg.batch_size))
    train_epoch(model, cfg, optimizer, scheduler, warmup, AugmentConfig(), generator, fmt)
    images, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        train_epoch(model, cfg, optimizer, scheduler, data, AugmentConfig(), generator, fmt)
        images += len(data)
    return images / (time.perf_counter() - started)


def build_parser() -> argparse.ArgumentParser:
    p = doc_parser(__doc__)
    p.add_argument("--threads", type=positive_int, default=2, help="torch threads (default 2)")
    p.add_argument("--batch", type=positive_int, default=64, help="training batch size (default 64)")
    p.add_argument("--seconds", type=positive_float, default=8.0, help="time per measurement (default 8)")
    return p


def main() -> None:
    p = build_parser()
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = make_synthetic(512, seed=0)
    peak = matmul_gflops(args.seconds / 2)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}")
    print(f"dense float32 matmul (1024^3): {peak:.1f} GFLOP/s")
    print(f"{'family':<8} {'size of':<10} {'config':<18} {'KB':>6} {'MMAC/img':>9} {'img/s':>7} {'GFLOP/s':>8} "
          f"{'of matmul':>9}")
    for family in searched_families():
        for design, hand in HAND_DESIGNS.items():
            cfg = hand if family == design else nearest(family, measure(hand).weight_bytes)
            cfg = cfg.replace(batch_size=args.batch)
            size = measure(cfg)
            rate = images_per_second(cfg, data, args.seconds)
            gflops = rate * 3 * 2 * size.macs / 1e9
            label = f"w{cfg.width} d{cfg.depth}"
            print(f"{family:<8} {design + '8':<10} {label:<18} {size.kb:6.1f} {size.macs / 1e6:9.1f} {rate:7.0f} "
                  f"{gflops:8.1f} {gflops / peak:9.0%}")
    # Re-measure the matmul at the end: a busy machine shows here as a drift between the two figures.
    print(f"dense float32 matmul again: {matmul_gflops(args.seconds / 2):.1f} GFLOP/s")


if __name__ == "__main__":
    main()
