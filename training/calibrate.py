"""Calibration fitted on the validation split after training: a softmax temperature and the two
thresholds that turn probabilities into the four answers (cat, dog, unsure, neither).

- Temperature scaling (Guo et al., 2017): one scalar T that minimises the validation negative
  log-likelihood of softmax(logits / T). Label smoothing leaves a fine-tuned net under-confident; T
  corrects that without changing any decision, so accuracy is untouched and confidences mean what
  they say (the ECE that evaluate reports).
- `unsure_below`: the cat/dog confidence under which the answer is "unsure", set so that
  `train.unsure_pet_rate` of the validation pets fall under it.
- `neither_below`: the pet probability (the ImageNet head's cat + dog mass) under which the answer is
  "neither". `train.neither_pet_rate` of the validation pets may fall under it: that is its budget.
  With validation non-pet photos, it is then lowered as far as it goes without flagging fewer of
  them: just above the highest non-pet score under the budget. Pet scores have a long low tail
  (a cat half hidden behind a person), so the rate's quantile alone lands far above where the
  non-pets end, and flags test pets for nothing.
"""

from __future__ import annotations

import numpy as np
import torch

from handler.verdict import Thresholds
from training.model import Calibration


def fit_temperature(logits: torch.Tensor, labels: np.ndarray) -> float:
    """The T in [0.25, 8] minimising the NLL of softmax(logits / T): a log grid, then a finer one."""
    logits, target = logits.double(), torch.as_tensor(labels, dtype=torch.int64)

    def nll(t: float) -> float:
        return torch.nn.functional.cross_entropy(logits / t, target).item()

    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 61))
    best = min(grid, key=nll)
    fine = best * np.exp(np.linspace(-0.06, 0.06, 25))
    return round(float(min(fine, key=nll)), 4)


def threshold_for_rate(scores: np.ndarray, rate: float) -> float:
    """The largest threshold t such that at most `rate` of `scores` lie strictly below t."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    if rate <= 0 or len(ordered) == 0:
        return 0.0
    k = int(np.floor(rate * len(ordered)))  # this many may be flagged
    return float(ordered[min(k, len(ordered) - 1)])


def neither_threshold(pet: np.ndarray, nonpet: np.ndarray | None, rate: float) -> float:
    """The budget's threshold (at most `rate` of the pets under it), lowered to just above the highest
    non-pet score under it, so the same non-pets are flagged and as few pets as possible."""
    budget = threshold_for_rate(pet, rate)
    flagged = np.sort(np.asarray(nonpet if nonpet is not None else [], dtype=np.float64))
    flagged = flagged[flagged < budget]
    if not len(flagged):
        return budget
    return float(min(budget, np.nextafter(flagged[-1], 1.0)))


def calibrate(logits: torch.Tensor, pet: np.ndarray, labels: np.ndarray, unsure_rate: float,
              neither_rate: float, has_pet_score: bool, nonpet: np.ndarray | None = None) -> Calibration:
    """Fit the temperature and both thresholds on held-out pets (logits N x 2, pet scores N), and
    non-pet photos' pet scores where there are some."""
    temperature = fit_temperature(logits, labels)
    confidence = torch.softmax(logits.double() / temperature, 1).max(1).values.numpy()
    neither = neither_threshold(pet, nonpet, neither_rate) if has_pet_score else 0.0
    thresholds = Thresholds(
        unsure_below=round(threshold_for_rate(confidence, unsure_rate), 6),
        neither_below=float(np.ceil(neither * 1e6) / 1e6),  # rounded up: what was flagged stays flagged
    )
    return Calibration(temperature, thresholds)
