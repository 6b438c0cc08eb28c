"""Rolling-origin backtest: cutoffs, one fit, no refit, metrics."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from forecasting.backtest import backtest
from forecasting.seasonal_naive import SeasonalNaiveForecaster
from forecasting.types import InvalidConfigError, forecast_columns, validate_forecast_frame
from tests.forecasting.conftest import seasonal_frame


class CountingNaive(SeasonalNaiveForecaster):
    """Seasonal naive that counts fit/update/predict calls."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.calls = {"fit": 0, "update": 0, "predict": 0}

    def fit(self, frame: pd.DataFrame) -> CountingNaive:
        self.calls["fit"] += 1
        return super().fit(frame)

    def update(self, frame: pd.DataFrame) -> CountingNaive:
        self.calls["update"] += 1
        return super().update(frame)

    def predict(self, horizon: int) -> pd.DataFrame:
        self.calls["predict"] += 1
        return super().predict(horizon)


def test_every_test_timestamp_is_a_cutoff_and_the_model_is_fitted_once() -> None:
    frame = seasonal_frame(n_series=2, n=100)
    model = CountingNaive(season_length=24)
    result = backtest(model, frame, 5, test_fraction=0.2)
    validate_forecast_frame(result.forecasts)
    assert list(result.forecasts.columns) == forecast_columns()
    test_ts = sorted(frame["ts"].unique())[-20:]
    assert sorted(result.forecasts["cutoff"].unique()) == list(pd.DatetimeIndex(test_ts))
    assert model.calls == {"fit": 1, "update": 20, "predict": 20}
    assert len(result.forecasts) == 2 * 20 * 5
    m = result.metrics
    assert m["n_cutoffs"] == 20 and m["n"] == 2 * sum(min(5, 19 - i) for i in range(20))
    assert {"wql", "crps", "coverage_50", "coverage_80", "coverage_95", "mae", "rmse", "mase"} <= set(m)
    assert m["season_length"] == 24


def test_step_thins_cutoffs_and_bad_arguments_fail() -> None:
    frame = seasonal_frame(n_series=1, n=100)
    result = backtest(SeasonalNaiveForecaster(season_length=24), frame, 3, test_fraction=0.2, step=5)
    assert result.metrics["n_cutoffs"] == 4
    with pytest.raises(InvalidConfigError):
        backtest(SeasonalNaiveForecaster(), frame, 0)


def test_entities_with_different_spans_use_their_own_test_window() -> None:
    a = seasonal_frame(n_series=1, n=100)
    b = seasonal_frame(n_series=1, n=60, seed=3).assign(series_id="late")
    b["ts"] = b["ts"] + pd.Timedelta(hours=40)
    result = backtest(SeasonalNaiveForecaster(season_length=24), pd.concat([a, b]), 2, test_fraction=0.2)
    cut = result.forecasts.groupby("series")["cutoff"].nunique()
    assert cut.to_dict() == {"s0": 20, "late": 12}
