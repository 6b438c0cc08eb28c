"""Greedy selection's per-series weights against the pooled ones: `series_share` keeps what carries over to
later validation windows."""

from __future__ import annotations

import numpy as np

from forecasting.ensemble import series_share
from forecasting.types import DEFAULT_QUANTILES

LEVELS = np.asarray(DEFAULT_QUANTILES)


def _members(y: np.ndarray, errors: np.ndarray, spread: float) -> np.ndarray:
    """(M, n, K) quantile forecasts centred on y + error, a fixed normal-ish spread."""
    z = np.interp(LEVELS, [0.01, 0.5, 0.99], [-2.33, 0.0, 2.33])
    return (y[None, :] + errors)[:, :, None] + spread * z[None, None, :]


def test_series_weights_are_kept_when_series_differ_and_pooled_when_they_do_not() -> None:
    rng = np.random.default_rng(0)
    groups, per = 12, 40
    group = np.repeat(np.arange(groups), per)
    late = np.tile(np.arange(per) >= per // 2, groups)
    y = rng.normal(0, 1, len(group))
    ones = np.ones(len(y))
    # half the series suit member A (B is far off on them), the other half B: a series' own weights matter
    a_good = group < groups // 2
    err_a = np.where(a_good, rng.normal(0, 0.1, len(y)), rng.normal(2, 0.1, len(y)))
    err_b = np.where(a_good, rng.normal(2, 0.1, len(y)), rng.normal(0, 0.1, len(y)))
    share, tried = series_share(y, _members(y, np.stack([err_a, err_b]), 0.1), LEVELS, group, groups,
                                late, ones)  # fmt: skip
    assert share == 1.0 and tried["1"] < tried["0"]
    # two equally good members with independent errors on every series: what a series picks on its few
    # windows is chance, their even blend (the pooled choice) is better everywhere
    noise = rng.normal(0, 1, (2, len(y)))
    share, tried = series_share(y, _members(y, noise, 0.7), LEVELS, group, groups, late, ones)
    assert share <= 0.25 and tried["0"] < tried["1"]
