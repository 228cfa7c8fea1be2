"""Typed views of the `train:` and `evaluate:` sections of params.yaml.

Each entry point builds its dataclass in main() with `load_section(path, "train", TrainParams)`; a
missing section, an unknown key or a wrong type is an error that names the key, so a typo in
params.yaml (or in `dvc exp run -S train.epocs=3`) never silently falls back to a default.
The network's shape is not a parameter: it lives in training/model.py, because serving rebuilds the
model with `CatsDogsNet()` and the saved weights must fit that.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml


@dataclasses.dataclass(frozen=True)
class TrainParams:
    epochs: int = 150
    batch_size: int = 32
    lr: float = 1e-3  # peak of the one-cycle schedule
    warmup_fraction: float = 0.2  # share of the steps spent rising to `lr`
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    ema_decay: float = 0.998  # per step; validation and the saved model use the averaged weights
    seed: int = 42
    bf16: bool = True  # bfloat16 autocast on the CPU (AVX512-BF16): ~1.3x faster (make bench-train)
    threads: int = 2  # torch threads for the training step
    num_workers: int = 0  # DataLoader processes that augment while the step runs (0: in this process)
    max_minutes: float = 14.0  # time guard: on a slow machine the schedule follows the clock and ends here
    # Augmentation (training only): random crop, flip, rotation, colour jitter.
    crop_scale_min: float = 0.35  # RandomResizedCrop keeps 35-100 % of the picture's area...
    crop_size: int = 160  # ...at this side length: cheaper steps; evaluation stays at 224 (see README)
    rotation_degrees: float = 15.0
    jitter: float = 0.2  # brightness, contrast and saturation factors within 1 +- jitter
    mix_prob: float = 0.5  # share of batches mixed by CutMix or MixUp (training/augment.py)
    eval_batch_size: int = 100


@dataclasses.dataclass(frozen=True)
class EvaluateParams:
    batch_size: int = 100
    bf16: bool = False  # score in float32, the way the model is served by default
    threads: int = 2


P = TypeVar("P")


def _check_type(section: str, name: str, value: Any, default: Any) -> Any:
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not expected:
        raise ValueError(
            f"params: {section}.{name} must be {expected.__name__}, got {value!r} ({type(value).__name__})"
        )
    return value


def from_dict(section: str, raw: dict[str, Any] | None, cls: type[P]) -> P:
    """Build `cls` from a params section; unknown keys and wrong types are errors."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ValueError(f"params: section {section!r} must be a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ValueError(f"params: unknown key(s) in {section!r}: {', '.join(unknown)}; known: {', '.join(fields)}")
    values = {name: _check_type(section, name, raw[name], fields[name].default) for name in raw}
    return cls(**values)


def load_section(path: Path, section: str, cls: type[P]) -> P:
    """Read params.yaml and build the dataclass of one section (which must exist)."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError as e:
        raise ValueError(f"params file not found: {path}") from e
    if section not in data:
        raise ValueError(f"params: {path} has no {section!r} section")
    return from_dict(section, data[section], cls)
