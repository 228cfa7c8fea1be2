"""Train the chosen architecture on the prepared splits, keep the best-validation epoch, calibrate
it, track the run in MLflow.

Run: python -m training.train --data-dir data/prepared --out-dir models [--params params.yaml]
(`dvc repro` / `make train` do this as the `train` stage). Writes the model folder
(training/model.py: model.pt, model.json with the arch and calibration, index_to_name.json) and
models/mlflow_run.json (the run that made them).

The recipe for a 2-core CPU: uint8 pictures in memory, augmented per picture (training/augment.py);
bfloat16 autocast and channels_last; AdamW with a one-cycle learning rate, label smoothing and weight
decay. The default, EfficientNet-Lite0 from ImageNet weights, first trains only a new head on frozen
features, then the later blocks too, at a lower rate, while distillation keeps its ImageNet head
(the "is it a pet at all" score) faithful. The from-scratch CatsDogsNet trains everything, with
CutMix/MixUp. `train.max_minutes` stops cleanly if the machine is slower than planned.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from handler.preprocess import CLASS_NAMES
from training import model as model_folder
from training import tracking
from training.augment import batch_mixer, model_batch, train_loader
from training.calibrate import calibrate
from training.data import load_neither
from training.efficientnet import EfficientNetLite0, checkpoint_provenance, pet_mass
from training.figures import save_confusion_matrix, save_curves
from training.metrics import confusion_matrix, loss_and_accuracy, predict, predict_logits
from training.params import Recipe, TrainParams, load_section

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


def frozen_blocks(model: nn.Module, recipe: Recipe, epoch: int) -> int:
    """How many leading backbone blocks stay frozen in `epoch` (1-based): all of them during the
    head epochs, then those before recipe.unfreeze_from. A from-scratch net freezes nothing."""
    if not isinstance(model, EfficientNetLite0):
        return 0
    blocks = len(model._blocks)
    return blocks if epoch <= recipe.head_epochs else min(recipe.unfreeze_from, blocks)


def set_trainable(model: nn.Module, frozen: int) -> None:
    """Freeze the stem and the first `frozen` blocks of a pretrained backbone (and, always, its
    ImageNet head, which distillation keeps faithful through the shared features instead); with
    every block frozen the head convolution is frozen too, so only the new head learns.

    The depthwise kernels keep their ImageNet values in every block: on CPU their weight gradient is
    most of a fine-tuning step (bf16, channels-last), while the 1x1 convolutions around them, which
    hold 94 % of a block's weights, still learn. On the shared photos it halves an epoch at the same
    validation accuracy (README, "How the recipe was chosen")."""
    if not isinstance(model, EfficientNetLite0):
        return
    for name, parameter in model.named_parameters():
        if name.startswith("_blocks."):
            trainable = int(name.split(".")[1]) >= frozen and "._depthwise_conv." not in name
        elif name.startswith(("_conv_head", "_bn1")):
            trainable = frozen < len(model._blocks)
        else:
            trainable = name.startswith("_fc")
        parameter.requires_grad_(trainable)


def make_optimizer(model: nn.Module, params: TrainParams) -> torch.optim.AdamW:
    """AdamW; BatchNorm weights and biases get no weight decay; a pretrained backbone learns at
    recipe.backbone_lr, the new head at recipe.lr (each group keeps its peak in "peak_lr")."""
    recipe = params.recipe
    pretrained = isinstance(model, EfficientNetLite0)
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if name.startswith("imagenet_fc"):
            continue  # never trained: see set_trainable
        backbone = pretrained and not name.startswith("_fc")
        groups.setdefault((backbone, parameter.ndim > 1), []).append(parameter)
    return torch.optim.AdamW(
        [
            {"params": ps, "weight_decay": params.weight_decay if decay else 0.0,
             "peak_lr": recipe.backbone_lr if backbone else recipe.lr}
            for (backbone, decay), ps in sorted(groups.items(), key=lambda item: (item[0][0], not item[0][1]))
        ],
        lr=recipe.lr,
    )


def one_cycle_lr(progress: float, peak: float, warmup: float) -> float:
    """Linear warm-up from peak/25 to peak, then cosine decay to ~0, over progress 0..1."""
    if progress < warmup:
        return peak * (0.04 + 0.96 * progress / warmup)
    rest = min((progress - warmup) / max(1.0 - warmup, 1e-9), 1.0)
    return peak * (0.5 * (1.0 + math.cos(math.pi * rest)) * 0.999 + 0.001)


def ema_update(decay: float):
    """Exponential moving average whose decay ramps up from 0.1 to `decay`, so short runs average
    recent weights rather than the random initial ones."""

    def update(averaged: torch.Tensor, current: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(count)) / (10.0 + float(count)))
        return averaged + (current - averaged) * (1.0 - d)

    return update


class Step:
    """One optimisation step on a batch of augmented uint8 pictures; returns the batch loss.

    For a pretrained backbone the frozen trunk runs without autograd, and, while blocks are being
    fine-tuned, the original ImageNet head's answers on the same batch (a frozen teacher copy of the
    fine-tuned tail, fed the same trunk output) are distilled into the model's own ImageNet head
    (learning without forgetting), so its "is this a pet at all" score survives fine-tuning.
    With non-pet photos (outlier exposure), that score, the ImageNet head's cat + dog mass, is also
    taught directly: towards 1 on the batch's pets, towards 0 on a quarter-batch of non-pets."""

    def __init__(self, model: nn.Module, params: TrainParams, outliers: Iterator[torch.Tensor] | None = None) -> None:
        self.model, self.bf16 = model, params.bf16
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=params.label_smoothing)
        self.mixer = batch_mixer(params)
        pretrained = isinstance(model, EfficientNetLite0)
        self.distill_weight = params.recipe.distill_weight if pretrained else 0.0
        self.teacher = copy.deepcopy(model).eval().requires_grad_(False) if self.distill_weight else None
        self.outlier_weight = params.recipe.outlier_weight if pretrained else 0.0
        self.outliers = outliers if self.outlier_weight else None
        self.frozen = 0

    def __call__(self, optimizer: torch.optim.Optimizer, pictures: torch.Tensor, labels: torch.Tensor) -> float:
        inputs, targets = self.mixer(model_batch(pictures), labels)
        model = self.model
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            if isinstance(model, EfficientNetLite0):
                with torch.no_grad():
                    trunk = model.trunk(inputs, self.frozen)
                features = model.tail(trunk, self.frozen)
                loss = self.loss_fn(model._fc(model._dropout(features)), targets)
                if self.frozen < len(model._blocks):  # the ImageNet head's features are learning
                    imagenet = model.imagenet_fc(features)
                    if self.teacher is not None:
                        with torch.no_grad():
                            taught = self.teacher.imagenet_fc(self.teacher.tail(trunk, self.frozen))
                        loss = loss + self.distill_weight * distillation(imagenet, taught)
                    if self.outliers is not None:
                        loss = loss + self.outlier_weight * self._pet_loss(imagenet, next(self.outliers))
            else:
                loss = self.loss_fn(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()


    def _pet_loss(self, pets_imagenet: torch.Tensor, outliers: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of the pet mass: 1 for the pets, 0 for the non-pet pictures."""
        model = self.model
        with torch.no_grad():
            trunk = model.trunk(model_batch(outliers), self.frozen)
        outlier_mass = pet_mass(model.imagenet_fc(model.tail(trunk, self.frozen)))
        pet = pet_mass(pets_imagenet)
        eps = 1e-6
        return -(torch.log(pet.clamp_min(eps)).mean() + torch.log((1 - outlier_mass).clamp_min(eps)).mean()) / 2


def outlier_batches(images: np.ndarray | None, params: TrainParams) -> Iterator[torch.Tensor] | None:
    """Endless augmented quarter-batches of non-pet pictures (the same random transform as the pets),
    or None without any."""
    if images is None or not len(images) or not params.recipe.outlier_weight:
        return None
    loader = train_loader(images, np.zeros(len(images), dtype=np.int64),
                          dataclasses.replace(params, batch_size=max(2, params.batch_size // 4)))

    def forever() -> Iterator[torch.Tensor]:
        while True:
            for pictures, _ in loader:
                yield pictures

    return forever()


def distillation(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """KL(teacher || student) of temperature-softened distributions (Hinton et al.), scaled by T^2."""
    t = temperature
    return nn.functional.kl_div(
        torch.log_softmax(student.float() / t, 1), torch.log_softmax(teacher.float() / t, 1),
        log_target=True, reduction="batchmean",
    ) * (t * t)


def train_mode(model: nn.Module) -> None:
    """Pretrained BatchNorm keeps its ImageNet statistics (batches of 32 would only add noise);
    dropout is on either way."""
    model.train()
    if isinstance(model, EfficientNetLite0):
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()


def fit(model: nn.Module, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
        params: TrainParams, on_epoch: EpochCallback | None = None,
        outliers: np.ndarray | None = None) -> tuple[dict[str, list[float]], dict]:
    """Train for the recipe's epochs; return the per-epoch history and the best-val_acc averaged weights.

    The learning rate follows one cycle over the planned steps. Should the machine be too slow for
    params.max_minutes, progress is measured in time instead, so the cycle still completes (the
    run is then no longer bit-for-bit reproducible, and a warning says so).
    """
    recipe = params.recipe
    loader = train_loader(*train, params)
    optimizer = make_optimizer(model, params)
    # Validation, selection and saving use an exponential moving average of the weights (and of the
    # BatchNorm statistics): steadier than the last step's weights on a small dataset.
    averaged = AveragedModel(model, avg_fn=ema_update(params.ema_decay), use_buffers=True)
    step_fn = Step(model, params, outlier_batches(outliers, params))
    history: dict[str, list[float]] = {"epoch": [], "train_loss": [], "val_loss": [], "val_acc": [], "seconds": []}
    best_acc, best_state = -1.0, copy.deepcopy(model.state_dict())
    total_steps, step, budget = recipe.epochs * len(loader), 0, params.max_minutes * 60
    started, time_bound = time.monotonic(), False
    for epoch in range(1, recipe.epochs + 1):
        epoch_start = time.monotonic()
        step_fn.frozen = frozen_blocks(model, recipe, epoch)
        set_trainable(model, step_fn.frozen)
        train_mode(model)
        losses = []
        with tqdm(loader, desc=f"epoch {epoch}/{recipe.epochs}", unit="batch", leave=False) as bar:
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
                    group["lr"] = one_cycle_lr(progress, group["peak_lr"], params.warmup_fraction)
                losses.append(step_fn(optimizer, pictures, labels))
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
        logger.info("epoch %d/%d  train_loss %.4f  val_loss %.4f  val_acc %.4f  (%.0f s, %.0f img/s, %d blocks frozen)",
                    epoch, recipe.epochs, metrics["train_loss"], val_loss, val_acc, seconds,
                    len(losses) * params.batch_size / seconds, step_fn.frozen)
        if on_epoch:
            on_epoch(epoch, metrics)
        if step < len(loader) * epoch:  # the clock ended the cycle inside this epoch
            logger.warning("stopped in epoch %d: max_minutes=%s reached", epoch, params.max_minutes)
            break
    return history, best_state


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


def run_params(params: TrainParams, model: nn.Module, train_size: int, val_size: int, outlier_count: int) -> dict:
    """What MLflow records of a run: every setting, the chosen recipe flat, sizes, the checkpoint."""
    flat = {k: v for k, v in vars(params).items() if not isinstance(v, Recipe)}
    flat.update({f"recipe.{k}": v for k, v in vars(params.recipe).items()})
    flat.update(train_size=train_size, val_size=val_size, outlier_photos=outlier_count,
                model_parameters=sum(p.numel() for p in model.parameters()))
    if isinstance(model, EfficientNetLite0):
        flat.update(checkpoint_provenance())
    return flat


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
        outliers = load_neither(args.data_dir, "train")
        torch.set_num_threads(params.threads)
        seed_everything(params.seed)
        model = model_folder.build(params.arch, pretrained=True).to(memory_format=torch.channels_last)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logger.info("training %s on %d pictures, validating on %d; %s", params.arch, len(train[1]), len(val[1]), params)
    if outliers is None:
        logger.info("no non-pet photos (neither_train.npz): training without outlier exposure")
    else:
        logger.info("outlier exposure with %d non-pet photos", len(outliers))
    tags = {"git_commit": tracking.git_commit(), "data_version": tracking.data_version(args.data_dir),
            "arch": params.arch}
    with tracking.start_run(tags=tags) as run:
        import mlflow

        mlflow.log_params(run_params(params, model, len(train[1]), len(val[1]),
                                     0 if outliers is None else len(outliers)))
        started = time.monotonic()
        history, best_state = fit(model, train, val, params,
                                  on_epoch=lambda epoch, m: mlflow.log_metrics(m, step=epoch), outliers=outliers)
        minutes = (time.monotonic() - started) / 60
        model.load_state_dict(best_state)
        best = int(np.argmax(history["val_acc"][::-1]))  # last of the equal best, as in fit()
        best_epoch = history["epoch"][len(history["epoch"]) - 1 - best]
        # Calibrated in float32, the precision the serving runtimes answer in.
        logits, pet = predict(model, val[0], params.eval_batch_size, bf16=False)
        nonpets = load_neither(args.data_dir, "val")
        nonpet = None if nonpets is None else predict(model, nonpets, params.eval_batch_size, bf16=False)[1]
        calibration = calibrate(logits, pet, val[1], params.unsure_pet_rate, params.neither_pet_rate,
                                has_pet_score=isinstance(model, EfficientNetLite0), nonpet=nonpet)
        mlflow.log_metrics({"best_val_acc": max(history["val_acc"]), "best_epoch": best_epoch,
                            "train_minutes": minutes})
        mlflow.log_params({"calibration.temperature": calibration.temperature,
                           **{f"calibration.{k}": v for k, v in vars(calibration.thresholds).items()}})
        model_folder.save(args.out_dir, model, calibration, best_state)
        log_run_artifacts(model, history, val, params, args.data_dir)
        tracking.write_run_info(args.out_dir, run.info.run_id, run.info.experiment_id)
    logger.info("best val_acc %.4f at epoch %d after %.1f min; %s; wrote %s (MLflow run %s)",
                max(history["val_acc"]), best_epoch, minutes, calibration, args.out_dir, run.info.run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
