"""The runtime-neutral inference core: load the packaged model, decode images, answer a batch.

No TorchServe imports, so another server could serve the same archive with these classes:

    spec = ModelSpec.from_config({"runtime": "onnxruntime", "thresholds": {...}})
    classifier = Classifier.load(Path("unpacked-mar"), spec, version="1.0")
    array = classifier.decode(open("cat.jpg", "rb").read())        # 224 x 224 x 3 uint8
    [prediction] = classifier.predict(array[None])                 # Prediction(label="cat", ...)

Decoding and resizing are handler.preprocess's, the very functions training's prepare stage uses;
normalisation and the calibrated softmax are inside the exported graph (training/model.py
ServingGraph), which a runtime (handler/runtime.py) runs. The four answers come from
handler/verdict.py with the thresholds fitted by training. CPU only: the serving image has no GPU.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handler.errors import InferenceError, InvalidInput
from handler.preprocess import DEFAULT_MAX_PIXELS, IMAGE_SIZE, InvalidImage, load_image
from handler.runtime import DEFAULT_RUNTIME, Runtime, check, load_runtime
from handler.verdict import Thresholds, verdict

logger = logging.getLogger(__name__)

PROBABILITY_DIGITS = 6  # enough for any decision, short enough to read; the sum stays 1 within 1e-6
LABELS_FILE = "index_to_name.json"


@dataclasses.dataclass(frozen=True)
class Prediction:
    label: str  # the answer: a class name, "unsure" or "neither" (handler/verdict.py)
    probabilities: dict[str, float]  # every class, in the model's output order
    pet_probability: float  # how likely the picture shows any of the classes at all

    @property
    def confidence(self) -> float:
        return max(self.probabilities.values())

    def to_json(self, model_version: str) -> dict:
        return {"label": self.label, "probabilities": self.probabilities,
                "pet_probability": self.pet_probability, "model_version": model_version}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The `model:` section of the archive's model-config.yaml, written by serving/package.py."""

    runtime: str = DEFAULT_RUNTIME
    precision: str = "f32"
    thresholds: Thresholds = Thresholds()

    def __post_init__(self) -> None:
        check(self.runtime, self.precision)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None) -> ModelSpec:
        raw = dict(raw or {})
        unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown model setting(s) {unknown}; known: runtime, precision, thresholds")
        if "thresholds" in raw:
            raw["thresholds"] = Thresholds(**raw["thresholds"])
        return cls(**raw)

    def to_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Classifier:
    """A runtime with its labels, thresholds and version; turns uint8 images into Predictions."""

    def __init__(self, runtime: Runtime, labels: Sequence[str], version: str, thresholds: Thresholds,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.runtime = runtime
        self.labels = tuple(labels)
        self.version = version
        self.thresholds = thresholds
        self.max_pixels = max_pixels

    @classmethod
    def load(cls, model_dir: Path, spec: ModelSpec, version: str, threads: int = 1,
             max_pixels: int = DEFAULT_MAX_PIXELS) -> Classifier:
        """The runtime on model_dir's exported file, its labels, and a check of one batch."""
        runtime = load_runtime(spec.runtime, model_dir, threads, spec.precision)
        classifier = cls(runtime, read_labels(model_dir / LABELS_FILE), version, spec.thresholds, max_pixels)
        classifier.predict(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8))  # fail at load, not later
        logger.info("loaded model version %s on %s (%s) with labels %s", version, spec.runtime,
                    spec.precision, classifier.labels)
        return classifier

    def decode(self, data: bytes) -> np.ndarray:
        """Image bytes -> IMAGE_SIZE x IMAGE_SIZE x 3 uint8, or InvalidInput saying why not."""
        try:
            return load_image(data, self.max_pixels)
        except InvalidImage as e:
            raise InvalidInput(str(e)) from e

    def predict(self, images: np.ndarray) -> list[Prediction]:
        """N x IMAGE_SIZE x IMAGE_SIZE x 3 uint8 -> N Predictions, in one runtime call."""
        try:
            probabilities, pet = self.runtime.run(images)
        except Exception as e:  # the input was valid, so any failure here is the model's
            raise InferenceError(f"the model failed on a batch of {len(images)}: {e}") from e
        expected = (len(images), len(self.labels))
        if probabilities.shape != expected or pet.shape != (len(images),):
            raise InferenceError(
                f"the model returned shapes {probabilities.shape} and {pet.shape}, expected {expected} and "
                f"({len(images)},)"
            )
        if not (np.isfinite(probabilities).all() and np.isfinite(pet).all()):
            raise InferenceError("the model returned non-finite scores")
        return [self._prediction(row, float(p)) for row, p in zip(probabilities.astype(np.float64), pet)]

    def _prediction(self, row: np.ndarray, pet: float) -> Prediction:
        row = row / row.sum()  # float32 softmax sums to 1 within 1e-7; make the rounded answer exact
        probabilities = {label: round(float(p), PROBABILITY_DIGITS) for label, p in zip(self.labels, row)}
        pet = round(min(max(pet, 0.0), 1.0), PROBABILITY_DIGITS)
        return Prediction(verdict(probabilities, pet, self.thresholds), probabilities, pet)


def read_labels(labels_file: Path) -> list[str]:
    """index_to_name.json ({"0": "cat", "1": "dog"}) -> labels in index order."""
    mapping = json.loads(labels_file.read_text(encoding="utf-8"))
    if not isinstance(mapping, dict) or not mapping or set(mapping) != {str(i) for i in range(len(mapping))}:
        raise ValueError(f"{labels_file} must map every index 0..n-1 to a name, got {mapping!r}")
    return [str(mapping[str(i)]) for i in range(len(mapping))]
