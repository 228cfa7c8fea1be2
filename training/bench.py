"""Training throughput, the train stage's projected time, and peak memory (`make bench-train`).

Run: python -m training.bench [--steps 8] [--params params.yaml] [--check]
Times the real training step of the chosen architecture (training/train.py Step: augmentation in
the training process, channels_last, AdamW, distillation and outlier exposure where the recipe has
them) on random
pictures after two warm-up steps, in float32 and bfloat16 autocast, for each phase of the recipe
(head only on frozen features; with the later blocks unfrozen). From the measured speeds it projects
the train stage on 1,600 pictures (the 2,000 shared photos' train split) and checks it against the
budget: the recipe must finish inside train.max_minutes at two-thirds of the measured speed (a slower
day), and peak RSS must stay under 4 GB. `--check` exits 1 when a target is missed.
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

from handler.preprocess import IMAGE_SIZE
from training import model as model_folder
from training.augment import train_loader
from training.params import TrainParams, load_section
from training.train import (
    Step,
    frozen_blocks,
    make_optimizer,
    outlier_batches,
    seed_everything,
    set_trainable,
    train_mode,
)

WARMUP_STEPS = 2
TRAIN_PICTURES = 1600  # the train split of the 2,000 shared photos
SLOW_DAY = 2 / 3  # the recipe must fit the budget at this share of the measured speed
MAX_RSS_MB = 4096


def images_per_second(params: TrainParams, epoch: int, steps: int) -> float:
    """Throughput of `steps` training steps in the phase of `epoch` (after warm-up)."""
    seed_everything(params.seed)
    n = params.batch_size * (steps + WARMUP_STEPS)
    rng = np.random.default_rng(params.seed)
    images = rng.integers(0, 256, size=(n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, size=n).astype(np.int64)
    model = model_folder.build(params.arch, pretrained=False).to(memory_format=torch.channels_last)
    # With non-pet photos for outlier exposure, as `make train NEITHER=...` trains (random pictures here).
    step = Step(model, params, outlier_batches(images, params))
    step.frozen = frozen_blocks(model, params.recipe, epoch)
    set_trainable(model, step.frozen)
    train_mode(model)
    optimizer, batches = make_optimizer(model, params), iter(train_loader(images, labels, params))
    for _ in range(WARMUP_STEPS):
        step(optimizer, *next(batches))
    start = time.perf_counter()
    for pictures, targets in batches:
        step(optimizer, pictures, targets)
    return steps * params.batch_size / (time.perf_counter() - start)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per phase and precision")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    try:
        params = load_section(args.params, "train", TrainParams)
        if args.steps < 1:
            raise ValueError("--steps must be at least 1")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(params.threads)
    recipe = params.recipe
    phases = {"head only": 1} if recipe.head_epochs else {}
    if recipe.epochs > recipe.head_epochs:
        phases["fine-tune" if recipe.head_epochs else "all layers"] = recipe.head_epochs + 1
    print(f"{params.arch}, batch {params.batch_size}, {params.threads} threads, {args.steps} timed steps")
    print(f"{'phase':<14}{'epochs':>7}{'float32 img/s':>15}{'bf16 img/s':>12}{'bf16 gain':>11}")
    minutes = 0.0
    for name, epoch in phases.items():
        speeds = {bf16: images_per_second(dataclasses.replace(params, bf16=bf16), epoch, args.steps)
                  for bf16 in (False, True)}
        epochs = recipe.head_epochs if name == "head only" else recipe.epochs - recipe.head_epochs
        minutes += epochs * TRAIN_PICTURES / speeds[params.bf16] / 60
        print(f"{name:<14}{epochs:>7}{speeds[False]:>15.1f}{speeds[True]:>12.1f}{speeds[True] / speeds[False]:>10.2f}x")
    slow = minutes / SLOW_DAY
    rss = peak_rss_mb()
    fits, small = slow <= params.max_minutes, rss <= MAX_RSS_MB
    print(f"projected train stage ({TRAIN_PICTURES} pictures, {'bf16' if params.bf16 else 'float32'}, "
          f"training steps only): {minutes:.1f} min; at {SLOW_DAY:.0%} speed {slow:.1f} min "
          f"(budget {params.max_minutes:g}): {'met' if fits else 'MISSED'}")
    print(f"peak RSS: {rss:.0f} MB (limit {MAX_RSS_MB}): {'met' if small else 'MISSED'}")
    return 1 if args.check and not (fits and small) else 0


if __name__ == "__main__":
    sys.exit(main())
