"""Training throughput and memory: images/s in float32 and bfloat16 autocast, and peak RSS.

Run: python -m training.bench [--steps 12] [--batch-size 64] [--params params.yaml]  (`make bench-train`)
Times the real training step (augmentation as train.num_workers says, batch mixing, channels_last,
AdamW) on a fixed number of batches of random pictures, after two warm-up steps, and prints a table.
Peak RSS is the training process's high-water mark, and an augmenting worker's beside it if any.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from handler.preprocess import IMAGE_SIZE
from training.augment import batch_mixer, train_loader
from training.model import CatsDogsNet
from training.params import TrainParams, load_section
from training.train import make_optimizer, seed_everything, train_step

WARMUP_STEPS = 2


def images_per_second(params: TrainParams, steps: int) -> float:
    """Throughput of `steps` training steps (after warm-up) with the given precision and batch size."""
    seed_everything(params.seed)
    n = params.batch_size * (steps + WARMUP_STEPS)
    rng = np.random.default_rng(params.seed)
    images = rng.integers(0, 256, size=(n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, size=n).astype(np.int64)
    model = CatsDogsNet().to(memory_format=torch.channels_last).train()
    optimizer, loss_fn = make_optimizer(model, params), nn.CrossEntropyLoss(label_smoothing=params.label_smoothing)
    mixer, batches = batch_mixer(params), iter(train_loader(images, labels, params))
    for _ in range(WARMUP_STEPS):
        train_step(model, optimizer, loss_fn, mixer, *next(batches), params.bf16)
    start = time.perf_counter()
    for pictures, targets in batches:
        train_step(model, optimizer, loss_fn, mixer, pictures, targets, params.bf16)
    return steps * params.batch_size / (time.perf_counter() - start)


def peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="timed steps per precision")
    parser.add_argument("--batch-size", type=int, help="default: train.batch_size")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    try:
        params = load_section(args.params, "train", TrainParams)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.batch_size:
        params = dataclasses.replace(params, batch_size=args.batch_size)
    torch.set_num_threads(params.threads)
    print(f"CatsDogsNet, batch {params.batch_size}, {params.threads} threads, "
          f"{params.num_workers} augmenting worker(s), {args.steps} timed steps")
    rows = []
    for bf16 in (False, True):
        speed = images_per_second(dataclasses.replace(params, bf16=bf16), args.steps)
        rows.append(("bfloat16 autocast" if bf16 else "float32", speed))
    print(f"{'precision':<20}{'images/s':>10}")
    for name, speed in rows:
        print(f"{name:<20}{speed:>10.1f}")
    print(f"bf16 speed-up: {rows[1][1] / rows[0][1]:.2f}x")
    rss = f"peak RSS: {peak_rss_mb(resource.RUSAGE_SELF):.0f} MB (training process)"
    if params.num_workers:  # else the only child is the short-lived probe `import torch` starts
        rss += f", {peak_rss_mb(resource.RUSAGE_CHILDREN):.0f} MB (largest augmenting worker)"
    print(rss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
