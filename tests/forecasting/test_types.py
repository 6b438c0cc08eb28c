"""ForecastFrame format, quantile naming and the error hierarchy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import types as t


def test_default_columns_are_the_documented_wire_format() -> None:
    assert t.forecast_columns() == [
        "series", "metric", "cutoff", "timestamp", "horizon", "mean",
        "q0.01", "q0.05", "q0.1", "q0.25", "q0.5", "q0.75", "q0.9", "q0.95", "q0.99",
    ]  # fmt: skip
    assert t.quantile_column(0.025) == "q0.025"
    assert t.quantile_levels_of(t.empty_forecast_frame()) == t.DEFAULT_QUANTILES


@pytest.mark.parametrize("bad", [(), (0.0, 0.5), (0.5, 1.0), (0.9, 0.1), (0.5, 0.5), (float("nan"),)])
def test_quantile_levels_are_validated(bad: tuple[float, ...]) -> None:
    with pytest.raises(t.InvalidConfigError):
        t.validate_quantiles(bad)


def _frame(q: np.ndarray) -> pd.DataFrame:
    cutoff = pd.Timestamp("2024-01-01", tz="UTC")
    return t.make_forecast_frame(
        series=["a", "a"], metric=["cpu", "cpu"], cutoff=[cutoff, cutoff],
        timestamp=[cutoff + pd.Timedelta(minutes=5), cutoff + pd.Timedelta(minutes=10)],
        horizon=[1, 2], mean=q.mean(axis=1), quantiles=q, levels=(0.1, 0.5, 0.9), sort_quantiles=False,
    )  # fmt: skip


def test_make_and_validate_forecast_frame() -> None:
    good = _frame(np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]))
    assert list(good.columns) == t.forecast_columns((0.1, 0.5, 0.9))
    assert isinstance(good["cutoff"].dtype, pd.DatetimeTZDtype)
    assert t.validate_forecast_frame(good) is good
    with pytest.raises(t.InvalidSeriesError, match="cross"):
        t.validate_forecast_frame(_frame(np.array([[1.0, 3.0, 2.0], [1.0, 1.0, 1.0]])))
    with pytest.raises(t.InvalidSeriesError, match="columns must be exactly"):
        t.validate_forecast_frame(good.drop(columns=["mean"]), (0.1, 0.5, 0.9))
    with pytest.raises(t.InvalidSeriesError, match="finite"):
        t.validate_forecast_frame(_frame(np.array([[1.0, np.nan, 3.0], [1.0, 1.0, 1.0]])))
    with pytest.raises(t.InvalidSeriesError, match="after their cutoff"):
        t.validate_forecast_frame(good.assign(timestamp=good["cutoff"]))
    with pytest.raises(t.InvalidSeriesError, match="timezone-aware"):
        t.validate_forecast_frame(good.assign(cutoff=good["cutoff"].dt.tz_localize(None)))
    crossing = np.array([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    sorted_frame = t.make_forecast_frame(
        series=["a", "a"], metric=["m", "m"], cutoff=good["cutoff"], timestamp=good["timestamp"],
        horizon=[1, 2], mean=[2.0, 1.0], quantiles=crossing, levels=(0.1, 0.5, 0.9),
    )  # fmt: skip
    assert sorted_frame[["q0.1", "q0.5", "q0.9"]].to_numpy()[0].tolist() == [1.0, 2.0, 3.0]


def test_mean_from_quantiles() -> None:
    levels = np.array(t.DEFAULT_QUANTILES)
    assert t.mean_from_quantiles(levels, levels) == pytest.approx(0.5)  # uniform(0, 1)
    assert t.mean_from_quantiles(np.full(9, 4.2), levels) == pytest.approx(4.2)
    shifted = t.mean_from_quantiles(np.vstack([levels, levels + 10]), levels)
    np.testing.assert_allclose(shifted, [0.5, 10.5])


def test_errors_are_plain_exceptions_with_codes_and_advice() -> None:
    err = t.InsufficientHistoryError("seasonal_naive", needed=26, got=5, series="web/cpu", hint="one season")
    assert isinstance(err, t.ForecastingError) and isinstance(err, ValueError)
    assert (
        str(err)
        == "series 'web/cpu' has 5 observation(s); model 'seasonal_naive' needs at least 26 (one season)"
    )
    assert (err.needed, err.got, err.code) == (26, 5, "insufficient_history")
    assert "call fit" in str(t.NotFittedError("lightgbm"))
    for cls in (t.NotFittedError, t.InvalidSeriesError, t.InvalidConfigError, t.UnknownModelError):
        assert issubclass(cls, t.ForecastingError) and cls.code != t.ForecastingError.code
