"""Train CatsDogsNet on the prepared splits, keep the best-validation epoch, track the run in MLflow.

Run: python -m training.train --data-dir data/prepared --out-dir models [--params params.yaml]
(`dvc repro` / `make train` do this as the `train` stage). Writes models/model.pt (state_dict),
models/index_to_name.json and models/mlflow_run.json (the run that made them).

The recipe for a 2-core CPU: uint8 pictures in memory, augmented per picture and mixed per batch
(training/augment.py); bfloat16 autocast and channels_last (~1.3x the float32 speed on AVX512-BF16);
AdamW with a one-cycle learning rate, label smoothing and weight decay; `train.epochs` sets the
budget, `train.max_minutes` stops cleanly if the machine is slower than planned.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from handler.preprocess import CLASS_NAMES
from training import tracking
from training.augment import BatchMixer, batch_mixer, model_batch, train_loader
from training.figures import save_confusion_matrix, save_curves
from training.metrics import confusion_matrix, loss_and_accuracy, predict_logits
from training.model import CatsDogsNet
from training.params import TrainParams, load_section

logger = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict[str, float]], None]
CLOCK_SLACK = 0.05  # share of max_minutes the run may lag its step plan before the clock drives the schedule


def load_split(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """images uint8 (N, 224, 224, 3) and labels int64 (N,) of one prepared split."""
    path = Path(data_dir) / f"{split}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the prepare stage first (`make train` or `dvc repro`)")
    with np.load(path) as data:
        images, labels = data["images"], data["labels"].astype(np.int64)
    if len(images) == 0:
        raise ValueError(f"{path} holds no images")
    return images, labels


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: nn.Module, params: TrainParams) -> torch.optim.AdamW:
    """AdamW; BatchNorm weights and biases get no weight decay."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": params.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=params.lr,
    )


def one_cycle_lr(progress: float, params: TrainParams) -> float:
    """Linear warm-up from lr/25 to lr, then cosine decay to ~0, over progress 0..1."""
    warmup = params.warmup_fraction
    if progress < warmup:
        return params.lr * (0.04 + 0.96 * progress / warmup)
    rest = min((progress - warmup) / max(1.0 - warmup, 1e-9), 1.0)
    return params.lr * (0.5 * (1.0 + math.cos(math.pi * rest)) * 0.999 + 0.001)


def ema_update(decay: float):
    """Exponential moving average whose decay ramps up from 0.1 to `decay`, so short runs average
    recent weights rather than the random initial ones."""

    def update(averaged: torch.Tensor, current: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(count)) / (10.0 + float(count)))
        return averaged + (current - averaged) * (1.0 - d)

    return update


def train_step(model, optimizer, loss_fn, mixer: BatchMixer, pictures: torch.Tensor, labels: torch.Tensor,
               bf16: bool) -> float:
    """One optimisation step on a batch of augmented uint8 pictures; returns the batch loss."""
    inputs, targets = mixer(model_batch(pictures), labels)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = loss_fn(model(inputs), targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def fit(model: nn.Module, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
        params: TrainParams, on_epoch: EpochCallback | None = None) -> tuple[dict[str, list[float]], dict]:
    """Train for params.epochs; return the per-epoch history and the best-val_acc averaged weights.

    The learning rate follows one cycle over the planned steps. Should the machine be too slow for
    params.max_minutes, progress is measured in time instead, so the cycle still completes (the
    run is then no longer bit-for-bit reproducible, and a warning says so).
    """
    loader = train_loader(*train, params)
    optimizer = make_optimizer(model, params)
    # Validation, selection and saving use an exponential moving average of the weights (and of the
    # BatchNorm statistics): steadier than the last step's weights on a small dataset.
    averaged = AveragedModel(model, avg_fn=ema_update(params.ema_decay), use_buffers=True)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=params.label_smoothing)
    mixer = batch_mixer(params)
    history: dict[str, list[float]] = {"epoch": [], "train_loss": [], "val_loss": [], "val_acc": [], "seconds": []}
    best_acc, best_state = -1.0, copy.deepcopy(model.state_dict())
    total_steps, step, budget = params.epochs * len(loader), 0, params.max_minutes * 60
    started, time_bound = time.monotonic(), False
    for epoch in range(1, params.epochs + 1):
        epoch_start = time.monotonic()
        model.train()
        losses = []
        with tqdm(loader, desc=f"epoch {epoch}/{params.epochs}", unit="batch", leave=False) as bar:
            for pictures, labels in bar:
                clock = (time.monotonic() - started) / budget
                if clock >= 1.0 or step >= total_steps:
                    break
                # The clock takes over only once it runs CLOCK_SLACK behind the plan (start-up time).
                progress = max(step / total_steps, (clock - CLOCK_SLACK) / (1.0 - CLOCK_SLACK))
                if progress > step / total_steps and not time_bound:
                    time_bound = True
                    logger.warning("slower than max_minutes=%s allows: the schedule now follows the clock",
                                   params.max_minutes)
                for group in optimizer.param_groups:
                    group["lr"] = one_cycle_lr(progress, params)
                losses.append(train_step(model, optimizer, loss_fn, mixer, pictures, labels, params.bf16))
                averaged.update_parameters(model)
                step += 1
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if not losses:
            break
        val_loss, val_acc = loss_and_accuracy(
            predict_logits(averaged.module, val[0], params.eval_batch_size, params.bf16), val[1]
        )
        seconds = time.monotonic() - epoch_start
        metrics = {"train_loss": float(np.mean(losses)), "val_loss": val_loss, "val_acc": val_acc}
        for key, value in {"epoch": epoch, **metrics, "seconds": seconds}.items():
            history[key].append(value)
        if val_acc >= best_acc:  # ties go to the later, longer-trained epoch
            best_acc, best_state = val_acc, copy.deepcopy(averaged.module.state_dict())
        logger.info("epoch %d/%d  train_loss %.4f  val_loss %.4f  val_acc %.4f  (%.0f s, %.0f img/s)",
                    epoch, params.epochs, metrics["train_loss"], val_loss, val_acc, seconds,
                    len(losses) * params.batch_size / seconds)
        if on_epoch:
            on_epoch(epoch, metrics)
        if step < len(loader) * epoch:  # the clock ended the cycle inside this epoch
            logger.warning("stopped in epoch %d: max_minutes=%s reached", epoch, params.max_minutes)
            break
    return history, best_state


def save_model(model_dir: Path, state: dict) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.contiguous() for k, v in state.items()}, model_dir / "model.pt")
    names = {str(i): name for i, name in enumerate(CLASS_NAMES)}
    (model_dir / "index_to_name.json").write_text(json.dumps(names, indent=2) + "\n")


def log_run_artifacts(model: nn.Module, history: dict, val: tuple[np.ndarray, np.ndarray],
                      params: TrainParams, data_dir: Path) -> None:
    """Confusion matrix (val) and curves as JSON + PNG, the data report and the model, to the active run."""
    import mlflow
    import mlflow.pytorch

    logits = predict_logits(model, val[0], params.eval_batch_size, params.bf16)
    matrix = confusion_matrix(val[1], logits.argmax(1).numpy())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "confusion_matrix_val.json").write_text(
            json.dumps({"labels": list(CLASS_NAMES), "rows": "actual", "matrix": matrix}, indent=2))
        save_confusion_matrix(matrix, out / "confusion_matrix_val.png", "validation")
        (out / "loss_curves.json").write_text(json.dumps(history, indent=2))
        save_curves(history, out / "loss_curves.png")
        mlflow.log_artifacts(str(out))
    report = data_dir / "report.json"
    if report.exists():
        mlflow.log_artifact(str(report), artifact_path="data")
    # Pickle format: the default torch.export format would pin the batch size of an input example.
    mlflow.pytorch.log_model(model.eval(), name="model", serialization_format="pickle",
                             pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="prepared splits (train/val npz)")
    parser.add_argument("--out-dir", type=Path, required=True, help="where model.pt and friends go")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        params = load_section(args.params, "train", TrainParams)
        train, val = load_split(args.data_dir, "train"), load_split(args.data_dir, "val")
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(params.threads)
    seed_everything(params.seed)
    model = CatsDogsNet().to(memory_format=torch.channels_last)
    logger.info("training on %d pictures, validating on %d; %s", len(train[1]), len(val[1]), params)
    tags = {"git_commit": tracking.git_commit(), "data_version": tracking.data_version(args.data_dir)}
    with tracking.start_run(tags=tags) as run:
        import mlflow

        mlflow.log_params({**vars(params), "train_size": len(train[1]), "val_size": len(val[1]),
                           "model_parameters": sum(p.numel() for p in model.parameters())})
        started = time.monotonic()
        history, best_state = fit(model, train, val, params,
                                  on_epoch=lambda epoch, m: mlflow.log_metrics(m, step=epoch))
        minutes = (time.monotonic() - started) / 60
        model.load_state_dict(best_state)
        best = int(np.argmax(history["val_acc"][::-1]))  # last of the equal best, as in fit()
        best_epoch = history["epoch"][len(history["epoch"]) - 1 - best]
        mlflow.log_metrics({"best_val_acc": max(history["val_acc"]), "best_epoch": best_epoch,
                            "train_minutes": minutes})
        save_model(args.out_dir, best_state)
        log_run_artifacts(model, history, val, params, args.data_dir)
        tracking.write_run_info(args.out_dir, run.info.run_id, run.info.experiment_id)
    logger.info("best val_acc %.4f at epoch %d after %.1f min; wrote %s (MLflow run %s)",
                max(history["val_acc"]), best_epoch, minutes, args.out_dir / "model.pt", run.info.run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
