"""Metrics against hand-computed values and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from forecasting import metrics as m

LEVELS = (0.1, 0.5, 0.9)
Y = np.array([1.0, 2.0])
Q = np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]])


def test_pinball_loss_by_hand() -> None:
    expected = np.array([[0.1, 0.0, 0.1], [0.1, 0.0, 0.1]])
    np.testing.assert_allclose(m.pinball_loss(Y, Q, LEVELS), expected)
    np.testing.assert_allclose(m.mean_pinball_loss(Y, Q, LEVELS), [0.1, 0.0, 0.1])
    # under-forecast at tau=0.9 costs 0.9 per unit, over-forecast 0.1 per unit
    np.testing.assert_allclose(m.pinball_loss([3.0], [[2.0, 2.0, 2.0]], LEVELS), [[0.1, 0.5, 0.9]])


def test_weighted_quantile_loss_by_hand() -> None:
    # per level: 2 * [0.2, 0, 0.2] / sum|y| (= 3), averaged over 3 levels
    assert m.weighted_quantile_loss(Y, Q, LEVELS) == pytest.approx((0.4 / 3 + 0 + 0.4 / 3) / 3)
    assert math.isnan(m.weighted_quantile_loss(np.zeros(2), Q, LEVELS))


def test_crps_weights_and_value_by_hand() -> None:
    np.testing.assert_allclose(m.crps_weights(LEVELS), [0.3, 0.4, 0.3])
    assert m.crps_from_quantiles(Y, Q, LEVELS) == pytest.approx(2 * (0.1 * 0.3 + 0.1 * 0.3))


def test_crps_matches_gaussian_closed_form() -> None:
    levels = np.round(np.arange(0.01, 1.0, 0.01), 2)
    sigma, y = 2.0, 0.7
    q = stats.norm.ppf(levels, scale=sigma)[None, :]
    z = y / sigma
    exact = sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi))
    assert m.crps_from_quantiles([y], q, levels) == pytest.approx(exact, rel=0.03)


def test_coverage_and_interpolation() -> None:
    assert m.interval_coverage([1, 5, 9], [0, 0, 0], [6, 6, 6]) == pytest.approx(2 / 3)
    assert m.coverage(Y, Q, LEVELS, 0.8) == 1.0
    assert m.coverage([2.5], [[0.0, 1.0, 2.0]], LEVELS, 0.8) == 0.0
    # 0.25 sits 3/8 of the way from q0.1 to q0.5
    np.testing.assert_allclose(
        m.interpolate_quantiles(Q, LEVELS, [0.25, 0.5, 0.95]), [[0.375, 1, 2], [1.375, 2, 3]]
    )
    assert m.coverage([1.3], [[0.0, 1.0, 2.0]], LEVELS, 0.5) == 1.0  # inside [0.375, 1.625]


def test_point_metrics_by_hand() -> None:
    assert m.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert m.rmse([1, 2, 3], [2, 2, 5]) == pytest.approx(math.sqrt(5 / 3))
    assert m.seasonal_naive_scale(np.array([1.0, 3.0, 2.0, 4.0]), 1) == pytest.approx(5 / 3)
    assert m.seasonal_naive_scale(np.array([1.0, 3.0, 2.0, 4.0]), 2) == pytest.approx(1.0)
    assert math.isnan(m.seasonal_naive_scale(np.array([1.0, 2.0]), 2))
    assert m.mase([5.0], [4.0], 5 / 3) == pytest.approx(0.6)
    assert m.mase([5.0, 1.0], [4.0, 9.0], np.array([1.0, 0.0])) == pytest.approx(1.0)  # zero scale skipped


def test_summarize_ignores_missing_observations() -> None:
    out = m.summarize(np.array([1.0, np.nan, 2.0]), np.array([1.0, 0.0, 2.0]),
                      np.array([[0.0, 1.0, 2.0], [0, 0, 0], [1.0, 2.0, 3.0]]), LEVELS, scale=1.0)  # fmt: skip
    assert out["n"] == 2
    assert out["wql"] == pytest.approx(m.weighted_quantile_loss(Y, Q, LEVELS))
    assert out["coverage_80"] == 1.0 and out["mae"] == 0.0 and out["mase"] == 0.0
    assert set(out) >= {"crps", "coverage_50", "coverage_95", "rmse"}
