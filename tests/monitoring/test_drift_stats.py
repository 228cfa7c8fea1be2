"""The drift tests' statistics: known values, behaviour on same/different samples, and scipy agreement."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.stats import chi2_sf, chi_square_homogeneity, kolmogorov_sf, ks_two_sample


@pytest.mark.parametrize(
    ("x", "dof", "p"),
    [(3.841459, 1, 0.05), (6.634897, 1, 0.01), (9.210340, 2, 0.01), (11.344867, 3, 0.01), (0.0, 1, 1.0)],
)
def test_chi2_sf_matches_table_values(x, dof, p):
    assert chi2_sf(x, dof) == pytest.approx(p, abs=1e-6)


def test_chi_square_equals_the_two_proportion_z_test():
    # 30/100 vs 50/100: pooled p = 0.4, z = 0.2 / sqrt(0.4 * 0.6 * 0.02) = 2.8868, z^2 = 8.3333
    result = chi_square_homogeneity([30, 70], [50, 50])
    assert result.statistic == pytest.approx(8.333333, rel=1e-6)
    assert result.p_value == pytest.approx(0.0038924, rel=1e-4)
    assert result.dof == 1


def test_chi_square_identical_mix_is_not_significant():
    assert chi_square_homogeneity([50, 50], [100, 100]).p_value == pytest.approx(1.0)
    assert chi_square_homogeneity([40, 0], [80, 0]).p_value == 1.0  # one category only


def test_chi_square_rejects_empty_sample():
    with pytest.raises(ValueError):
        chi_square_homogeneity([0, 0], [5, 5])


def test_kolmogorov_sf_known_value():
    assert kolmogorov_sf(1.358) == pytest.approx(0.05, abs=5e-4)  # the classic 5% critical value
    assert kolmogorov_sf(0.0) == 1.0


def test_ks_statistic_is_the_largest_cdf_gap():
    # F_a jumps to 1 at 1; F_b is 0.5 at 1 and 1 at 3: the largest gap is 0.5.
    assert ks_two_sample([1.0, 1.0], [1.0, 3.0]).statistic == pytest.approx(0.5)
    assert ks_two_sample([0.1, 0.2], [0.7, 0.9]).statistic == pytest.approx(1.0)


def test_ks_separates_same_from_shifted():
    rng = np.random.default_rng(7)
    reference = rng.normal(0.0, 1.0, 500)
    assert ks_two_sample(rng.normal(0.0, 1.0, 300), reference).p_value > 0.05
    assert ks_two_sample(rng.normal(0.5, 1.0, 300), reference).p_value < 1e-6


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_scipy(seed):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    a, b = rng.beta(4, 1, 80 + 40 * seed), rng.beta(3, 1, 200)
    ours = ks_two_sample(a, b)
    theirs = stats.ks_2samp(a, b, method="asymp")
    assert ours.statistic == pytest.approx(theirs.statistic)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=0.02)
    counts = [[int(rng.integers(10, 90)), int(rng.integers(10, 90))] for _ in range(2)]
    chi2, p, dof, _ = stats.chi2_contingency(counts, correction=False)
    mine = chi_square_homogeneity(*counts)
    assert (mine.statistic, mine.dof) == (pytest.approx(chi2), dof)
    assert mine.p_value == pytest.approx(p, rel=1e-6)
