"""Behaviour specific to the baseline models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.fft_period import FftPeriodForecaster
from forecasting.seasonal_naive import SeasonalNaiveForecaster
from forecasting.types import InsufficientHistoryError, quantile_columns
from forecasting.vpa_histogram import VpaHistogramForecaster
from tests.forecasting.conftest import START, seasonal_frame


def test_seasonal_naive_repeats_a_noiseless_season_exactly() -> None:
    frame = seasonal_frame(n_series=1, n=24 * 5, noise=0.0)
    out = SeasonalNaiveForecaster(season_length=24).fit(frame).predict(30)
    expected = frame["value"].to_numpy()[-24:]
    q = out[quantile_columns()].to_numpy()
    np.testing.assert_allclose(q[:24, 4], expected, atol=1e-9)  # median = value one season ago
    np.testing.assert_allclose(q[:24].std(axis=1), 0.0, atol=1e-9)  # no residual spread
    np.testing.assert_allclose(q[24:30, 4], expected[:6], atol=1e-9)  # two seasons back past 24 steps


def test_seasonal_naive_intervals_follow_the_residual_spread_and_history_rule() -> None:
    frame = seasonal_frame(n_series=1, n=24 * 30, noise=1.0, seed=2)
    out = SeasonalNaiveForecaster(season_length=24).fit(frame).predict(1)
    # y[t] - y[t-24] ~ N(0, 2): the 0.1..0.9 half-width is about 1.2816 * sqrt(2)
    half = float((out["q0.9"] - out["q0.1"]).iloc[0]) / 2
    assert half == pytest.approx(1.2816 * np.sqrt(2), rel=0.15)
    with pytest.raises(InsufficientHistoryError, match="needs at least 26"):
        SeasonalNaiveForecaster(season_length=24).fit(frame.iloc[:20])
    assert SeasonalNaiveForecaster().fit(frame.iloc[:30]).get_params()["season_length"] is None


def test_vpa_histogram_tracks_percentiles_and_forgets_old_regimes() -> None:
    rng = np.random.default_rng(0)
    ts = pd.date_range(START, periods=2000, freq="5min")
    values = rng.uniform(50, 100, len(ts))
    frame = pd.DataFrame({"series_id": "pod", "ts": ts, "value": values})
    model = VpaHistogramForecaster(half_life="24h").fit(frame)
    q = model.predict(1)[quantile_columns()].to_numpy()[0]
    np.testing.assert_allclose(q[[2, 4, 6]], [55, 75, 95], rtol=0.05)  # uniform(50, 100) percentiles
    later = pd.DataFrame({"series_id": "pod", "ts": ts[-1] + pd.to_timedelta(np.arange(1, 2001) * 5, "min"),
                          "value": rng.uniform(10, 20, 2000)})  # fmt: skip
    q2 = model.update(later).predict(1)[quantile_columns()].to_numpy()[0]
    assert 10 <= q2[4] <= 21  # ~7 half-lives later the old regime has < 1% of the weight


def test_fft_period_finds_the_dominant_cycle() -> None:
    frame = seasonal_frame(n_series=1, n=24 * 10, noise=0.2, trend=0.01)
    model = FftPeriodForecaster().fit(frame)
    assert model._fits[("s0", "value")].period == 24
    out = model.predict(24)
    t = np.arange(24 * 10, 24 * 11)
    truth = 20 + 5 * np.sin(2 * np.pi * t / 24) + 0.01 * t
    assert np.abs(out["q0.5"].to_numpy() - truth).mean() < 0.3
