"""The four answers: cat, dog, unsure, neither; one implementation for serving and evaluation.

    verdict({"cat": 0.97, "dog": 0.03}, pet_probability=0.99, thresholds=Thresholds(0.8, 0.2))  # "cat"

"neither" wins over everything (the picture shows no cat or dog, so its cat/dog split means
nothing), then "unsure" (a pet, but the model cannot tell which), then the more probable class.
Both thresholds are fitted on held-out photos by training and travel in the .mar. Free of torch and
numpy, so light clients (the smoke test's minimal environment) import the names from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

CLASS_NAMES = ("cat", "dog")  # the model's classes, index 0 = cat, 1 = dog
UNSURE = "unsure"
NEITHER = "neither"
VERDICTS = (*CLASS_NAMES, UNSURE, NEITHER)  # every answer's `label` is one of these


@dataclasses.dataclass(frozen=True)
class Thresholds:
    unsure_below: float = 0.0  # cat/dog confidence under this: "unsure"
    neither_below: float = 0.0  # pet probability under this: "neither"

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"threshold {name} must be a number in [0, 1], got {value!r}")


def verdict(probabilities: Mapping[str, float], pet_probability: float, thresholds: Thresholds) -> str:
    """The answer for one picture from its class probabilities and its pet probability."""
    if pet_probability < thresholds.neither_below:
        return NEITHER
    label = max(probabilities, key=probabilities.__getitem__)
    if probabilities[label] < thresholds.unsure_below:
        return UNSURE
    return label
