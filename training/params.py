"""Typed views of the `train:` and `evaluate:` sections of params.yaml.

Each entry point builds its dataclass in main() with `load_section(path, "train", TrainParams)`; a
missing section, an unknown key, a wrong type or a value out of range is an error that names the
key, so a typo in params.yaml (or in `dvc exp run -S train.epocs=3`) never silently falls back to a
default, and `epochs: 0` fails here rather than after an MLflow run was opened.

`train.arch` picks the architecture; each architecture has its own recipe sub-section
(`train.efficientnet_lite0`, `train.catsdogsnet`), so `dvc exp run -S train.arch=catsdogsnet` trains
the from-scratch baseline with its own schedule, and both recipes stay reviewable side by side.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

ARCHS = ("efficientnet_lite0", "catsdogsnet")  # training/model.py builds them


def _check(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise ValueError(f"params: {name} must be {expected}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The schedule of one architecture. Fine-tuning a pretrained backbone: `head_epochs` train only
    the new head on frozen features, then blocks from `unfreeze_from` on train too, at `backbone_lr`,
    while `distill_weight` keeps the ImageNet head faithful to the original (learning without
    forgetting). A from-scratch net trains everything from the start (head_epochs 0, unfreeze_from 0)."""

    epochs: int = 6
    lr: float = 2e-3  # peak of the one-cycle schedule (the new head; everything, from scratch)
    backbone_lr: float = 3e-4  # peak for the unfrozen pretrained blocks
    head_epochs: int = 1
    unfreeze_from: int = 5  # first backbone block trained after the head epochs (0: all of it)
    distill_weight: float = 1.0  # weight of the ImageNet-head distillation loss (0: off)
    outlier_weight: float = 0.5  # weight of the pet-mass loss on pets and non-pet photos (0: off)
    crop_size: int = 224  # RandomResizedCrop side; evaluation and serving stay at 224
    crop_scale_min: float = 0.6  # the crop keeps this share of the picture's area, or more
    mix_prob: float = 0.0  # share of batches mixed by CutMix or MixUp (training/augment.py)

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "epochs", self.epochs, "at least 1")
        _check(self.lr > 0, "lr", self.lr, "positive")
        _check(self.backbone_lr >= 0, "backbone_lr", self.backbone_lr, ">= 0")
        _check(0 <= self.head_epochs <= self.epochs, "head_epochs", self.head_epochs, "between 0 and epochs")
        _check(self.unfreeze_from >= 0, "unfreeze_from", self.unfreeze_from, ">= 0")
        _check(self.distill_weight >= 0, "distill_weight", self.distill_weight, ">= 0")
        _check(self.outlier_weight >= 0, "outlier_weight", self.outlier_weight, ">= 0")
        _check(self.crop_size >= 32 and self.crop_size % 32 == 0, "crop_size", self.crop_size,
               "a multiple of 32 (the backbones downsample 32x)")
        _check(0 < self.crop_scale_min <= 1, "crop_scale_min", self.crop_scale_min, "in (0, 1]")
        _check(0 <= self.mix_prob <= 1, "mix_prob", self.mix_prob, "in [0, 1]")


@dataclasses.dataclass(frozen=True)
class TrainParams:
    arch: str = "efficientnet_lite0"
    batch_size: int = 32
    warmup_fraction: float = 0.2  # share of the steps spent rising to the peak learning rate
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    ema_decay: float = 0.998  # per step; validation and the saved model use the averaged weights
    seed: int = 42
    bf16: bool = True  # bfloat16 autocast on the CPU (AVX512-BF16): faster steps (make bench-train)
    threads: int = 2  # torch threads for the training step
    num_workers: int = 0  # DataLoader processes that augment while the step runs (0: in this process)
    max_minutes: float = 10.0  # time guard: on a slow machine the schedule follows the clock and ends here
    rotation_degrees: float = 15.0  # augmentation (training only), with flip and colour jitter
    jitter: float = 0.2  # brightness, contrast and saturation factors within 1 +- jitter
    eval_batch_size: int = 100
    # Calibration on the validation pets (training/calibrate.py): the share of real cat and dog
    # photos each extra answer may take, which sets its threshold.
    unsure_pet_rate: float = 0.03  # answered "unsure" (cat/dog confidence too low)
    neither_pet_rate: float = 0.005  # answered "neither" (pet probability too low)
    efficientnet_lite0: Recipe = Recipe()
    catsdogsnet: Recipe = Recipe(epochs=150, lr=1e-3, head_epochs=0, unfreeze_from=0, distill_weight=0.0,
                                 outlier_weight=0.0, crop_size=160, crop_scale_min=0.35, mix_prob=0.5)

    def __post_init__(self) -> None:
        _check(self.arch in ARCHS, "arch", self.arch, f"one of {', '.join(ARCHS)}")
        for name in ("batch_size", "threads", "eval_batch_size"):
            _check(getattr(self, name) >= 1, name, getattr(self, name), "at least 1")
        _check(self.num_workers >= 0, "num_workers", self.num_workers, ">= 0")
        _check(0 <= self.warmup_fraction < 1, "warmup_fraction", self.warmup_fraction, "in [0, 1)")
        _check(self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0")
        _check(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing, "in [0, 1)")
        _check(0 <= self.ema_decay < 1, "ema_decay", self.ema_decay, "in [0, 1)")
        _check(self.max_minutes > 0, "max_minutes", self.max_minutes, "positive")
        _check(0 <= self.rotation_degrees <= 180, "rotation_degrees", self.rotation_degrees, "in [0, 180]")
        _check(0 <= self.jitter < 1, "jitter", self.jitter, "in [0, 1)")
        for name in ("unsure_pet_rate", "neither_pet_rate"):
            _check(0 <= getattr(self, name) < 0.5, name, getattr(self, name), "in [0, 0.5)")

    @property
    def recipe(self) -> Recipe:
        """The schedule of the chosen architecture."""
        return getattr(self, self.arch)


@dataclasses.dataclass(frozen=True)
class EvaluateParams:
    batch_size: int = 100
    bf16: bool = False  # score in float32: the serving runtimes answer what float32 PyTorch does
    threads: int = 2
    unsure_below: float = 0.75  # report the share of answers whose confidence is under this

    def __post_init__(self) -> None:
        _check(self.batch_size >= 1, "batch_size", self.batch_size, "at least 1")
        _check(self.threads >= 1, "threads", self.threads, "at least 1")
        _check(0.5 <= self.unsure_below <= 1, "unsure_below", self.unsure_below, "in [0.5, 1]")


P = TypeVar("P")


def _check_type(section: str, name: str, value: Any, default: Any) -> Any:
    if dataclasses.is_dataclass(default):
        return from_dict(f"{section}.{name}", value, type(default), base=default)
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not expected:
        raise ValueError(
            f"params: {section}.{name} must be {expected.__name__}, got {value!r} ({type(value).__name__})"
        )
    return value


def from_dict(section: str, raw: dict[str, Any] | None, cls: type[P], base: P | None = None) -> P:
    """Build `cls` from a params section (over `base`'s values when given, else the defaults);
    unknown keys, wrong types and out-of-range values are errors naming the key."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ValueError(f"params: section {section!r} must be a mapping, got {type(raw).__name__}")
    base = base if base is not None else cls()
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ValueError(f"params: unknown key(s) in {section!r}: {', '.join(unknown)}; known: {', '.join(fields)}")
    values = {name: _check_type(section, name, raw[name], getattr(base, name)) for name in raw}
    try:
        return dataclasses.replace(base, **values)
    except ValueError as e:  # a range check: name the section too
        raise ValueError(str(e).replace("params: ", f"params: {section}.", 1)) from None


def load_section(path: Path, section: str, cls: type[P]) -> P:
    """Read params.yaml and build the dataclass of one section (which must exist)."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError as e:
        raise ValueError(f"params file not found: {path}") from e
    if section not in data:
        raise ValueError(f"params: {path} has no {section!r} section")
    return from_dict(section, data[section], cls)
