"""The two drift tests, in numpy and the standard library (no scipy needed at serving/monitoring time).

- `chi_square_homogeneity`: do two samples of category counts come from the same mix (Pearson's
  chi-square test on the 2 x k contingency table; with two categories it equals the two-proportion z-test).
- `ks_two_sample`: do two samples of a continuous value come from the same distribution (two-sample
  Kolmogorov-Smirnov, asymptotic p-value with Stephens' small-sample correction).
tests/monitoring/test_drift_stats.py checks both against scipy where scipy is installed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float
    dof: int | None = None


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square with an integer number of degrees of freedom (closed form)."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
    if x <= 0:
        return 1.0
    half = x / 2.0
    if dof % 2 == 0:  # e^{-x/2} * sum_{k < dof/2} (x/2)^k / k!
        term = total = 1.0
        for k in range(1, dof // 2):
            term *= half / k
            total += term
        return min(1.0, math.exp(-half) * total)
    # odd: erfc(sqrt(x/2)) + e^{-x/2} * sum_{k=1}^{(dof-1)/2} (x/2)^{k-1/2} / Gamma(k + 1/2)
    total, term = math.erfc(math.sqrt(half)), math.sqrt(half) / math.gamma(1.5)
    for k in range(1, (dof + 1) // 2):
        total += math.exp(-half) * term
        term *= half / (k + 0.5)
    return min(1.0, max(0.0, total))


def chi_square_homogeneity(a: Sequence[int], b: Sequence[int]) -> TestResult:
    """Pearson chi-square on counts a and b over the same categories (no continuity correction)."""
    table = np.array([a, b], dtype=float)
    if table.shape[0] != 2 or table.ndim != 2 or (table < 0).any():
        raise ValueError("expected two equally long sequences of non-negative counts")
    table = table[:, table.sum(axis=0) > 0]  # a category neither sample has carries no information
    if table.shape[1] < 2:
        return TestResult(0.0, 1.0, 0)  # one category in both: identical mixes
    if (table.sum(axis=1) == 0).any():
        raise ValueError("each sample needs at least one observation")
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return TestResult(statistic, chi2_sf(statistic, dof), dof)


def kolmogorov_sf(x: float) -> float:
    """P(K >= x) for the Kolmogorov distribution: 2 * sum_{k>=1} (-1)^{k-1} e^{-2 k^2 x^2}."""
    if x < 0.2:  # the series converges slowly here, and the answer is 1 to double precision
        return 1.0
    total = sum((-1) ** (k - 1) * math.exp(-2.0 * k * k * x * x) for k in range(1, 101))
    return min(1.0, max(0.0, 2.0 * total))


def ks_two_sample(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Two-sample KS: D = max |F_a - F_b|; p from the asymptotic distribution with Stephens' correction."""
    x, y = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    if x.size == 0 or y.size == 0:
        raise ValueError("each sample needs at least one value")
    grid = np.concatenate([x, y])
    cdf_x = np.searchsorted(x, grid, side="right") / x.size
    cdf_y = np.searchsorted(y, grid, side="right") / y.size
    d = float(np.max(np.abs(cdf_x - cdf_y)))
    en = math.sqrt(x.size * y.size / (x.size + y.size))
    return TestResult(d, kolmogorov_sf((en + 0.12 + 0.11 / en) * d))
