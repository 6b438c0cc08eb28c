"""Probabilistic forecasting for Foresight: one Forecaster contract, quantile ForecastFrames, metrics.

Pure library code (no web or database imports). Typical use::

    from forecasting import create_forecaster, available_models
    model = create_forecaster("auto", horizon=12).fit(long_frame)
    forecast = model.predict(12)  # ForecastFrame: series, metric, cutoff, timestamp, horizon, mean, q...

Model modules are imported lazily by the registry, so importing this package stays cheap.
"""

from forecasting.base import DEFAULT_MODEL, Forecaster, available_models, create_forecaster, register
from forecasting.types import (
    DEFAULT_QUANTILES,
    ForecastingError,
    InsufficientHistoryError,
    InvalidConfigError,
    InvalidSeriesError,
    NotFittedError,
    UnknownModelError,
    forecast_columns,
    make_forecast_frame,
    validate_forecast_frame,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_QUANTILES",
    "Forecaster",
    "ForecastingError",
    "InsufficientHistoryError",
    "InvalidConfigError",
    "InvalidSeriesError",
    "NotFittedError",
    "UnknownModelError",
    "available_models",
    "create_forecaster",
    "forecast_columns",
    "make_forecast_frame",
    "register",
    "validate_forecast_frame",
]
