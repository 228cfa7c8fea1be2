"""The runtime-neutral inference core: load the model, decode images, classify a batch.

No TorchServe imports, so another runtime could serve the same model with these classes:

    classifier = Classifier.load("training/model.py", "models/model.pt", "models/index_to_name.json", "1.0")
    array = classifier.decode(open("cat.jpg", "rb").read())        # 224 x 224 x 3 uint8
    [prediction] = classifier.predict(array[None])                 # Prediction(label="cat", ...)

Decoding and normalisation are handler.preprocess's, the very functions training's evaluation uses.
CPU only: the serving image has no GPU. Torch threads are the caller's decision (set at start-up).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from handler.errors import InferenceError, InvalidInput
from handler.preprocess import DEFAULT_MAX_PIXELS, IMAGE_SIZE, InvalidImage, load_image, to_model_input

logger = logging.getLogger(__name__)

PROBABILITY_DIGITS = 6  # enough for any decision, short enough to read; the sum stays 1 within 1e-6


@dataclasses.dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]  # every class, in the model's output order

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    def to_json(self, model_version: str) -> dict:
        return {"label": self.label, "probabilities": self.probabilities, "model_version": model_version}


class Classifier:
    """An eval-mode model with its labels and version; turns uint8 images into Predictions."""

    def __init__(
        self, model: nn.Module, labels: Sequence[str], version: str, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> None:
        # to_model_input hands over channels-last tensors (a view of the decoded H x W x 3 arrays);
        # weights in the same order keep oneDNN on its fast path, with no reorder per call.
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.labels = tuple(labels)
        self.version = version
        self.max_pixels = max_pixels

    @classmethod
    def load(
        cls,
        model_file: str | Path,
        state_dict_file: str | Path,
        labels_file: str | Path,
        version: str,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> Classifier:
        """Build the model class defined in `model_file`, load its weights and labels, check one batch."""
        model = find_model_class(Path(model_file))()
        # weights_only: a state_dict never needs arbitrary unpickling, so refuse it.
        state_dict = torch.load(state_dict_file, map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(state_dict)
        except RuntimeError as e:  # one line per mismatched tensor: report the count and the first
            problems = [line.strip() for line in str(e).splitlines()[1:]] or [str(e)]
            raise ValueError(
                f"{state_dict_file} does not fit {type(model).__name__} of {model_file}: "
                f"{len(problems)} problem(s), first: {problems[0]}"
            ) from e
        classifier = cls(model, read_labels(Path(labels_file)), version, max_pixels)
        classifier.predict(
            np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        )  # fail at load, not later
        logger.info("loaded model version %s with labels %s", version, classifier.labels)
        return classifier

    def decode(self, data: bytes) -> np.ndarray:
        """Image bytes -> IMAGE_SIZE x IMAGE_SIZE x 3 uint8, or InvalidInput saying why not."""
        try:
            return load_image(data, self.max_pixels)
        except InvalidImage as e:
            raise InvalidInput(str(e)) from e

    def predict(self, images: np.ndarray) -> list[Prediction]:
        """N x IMAGE_SIZE x IMAGE_SIZE x 3 uint8 -> N Predictions, in one forward pass."""
        try:
            with torch.inference_mode():
                logits = self.model(to_model_input(images))
                probabilities = torch.softmax(logits.double(), dim=1)
        except Exception as e:  # the input was valid, so any failure here is the model's
            raise InferenceError(f"the model failed on a batch of {len(images)}: {e}") from e
        expected = (len(images), len(self.labels))
        if tuple(probabilities.shape) != expected:
            raise InferenceError(
                f"the model returned shape {tuple(probabilities.shape)}, expected {expected}"
            )
        if not torch.isfinite(probabilities).all():
            raise InferenceError("the model returned non-finite scores")
        return [self._prediction(row) for row in probabilities.tolist()]

    def _prediction(self, row: list[float]) -> Prediction:
        best = max(range(len(row)), key=row.__getitem__)
        probabilities = {label: round(p, PROBABILITY_DIGITS) for label, p in zip(self.labels, row)}
        return Prediction(label=self.labels[best], probabilities=probabilities)


def find_model_class(model_file: Path) -> type[nn.Module]:
    """The one nn.Module class defined in a Python file (the contract TorchServe's eager loader has too)."""
    if not model_file.is_file():
        raise FileNotFoundError(f"model file not found: {model_file}")
    spec = importlib.util.spec_from_file_location(f"catsdogs_model_{model_file.stem}", model_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__
    ]
    if len(classes) != 1:
        names = [c.__name__ for c in classes]
        raise ValueError(f"{model_file} must define exactly one nn.Module class, found {names}")
    return classes[0]


def read_labels(labels_file: Path) -> list[str]:
    """index_to_name.json ({"0": "cat", "1": "dog"}) -> labels in index order."""
    mapping = json.loads(labels_file.read_text(encoding="utf-8"))
    if not isinstance(mapping, dict) or not mapping or set(mapping) != {str(i) for i in range(len(mapping))}:
        raise ValueError(f"{labels_file} must map every index 0..n-1 to a name, got {mapping!r}")
    return [str(mapping[str(i)]) for i in range(len(mapping))]
