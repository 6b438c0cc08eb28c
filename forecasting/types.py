"""Shared vocabulary of the forecasting package: quantile levels, the ForecastFrame format and errors.

Everything downstream (policies, the service, offline tools) reads forecasts in exactly one format, so the
format and its validation live here and nowhere else.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

DEFAULT_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
"""Quantile levels every forecaster emits unless configured otherwise (docs/architecture.md §5)."""

DEFAULT_METRIC = "value"
"""Metric name used when the input has no `metric` column."""

# Input (long) frame columns: one row per observation.
SERIES_ID = "series_id"
TS = "ts"
VALUE = "value"
METRIC = "metric"

# ForecastFrame identifying columns, in order.
ID_COLUMNS: tuple[str, ...] = ("series", "metric", "cutoff", "timestamp", "horizon")
MEAN_COLUMN = "mean"


class ForecastingError(Exception):
    """Base of every error raised by the forecasting package; `code` lets a caller map it (e.g. to HTTP)."""

    code = "forecasting_error"


class InvalidConfigError(ForecastingError, ValueError):
    """A forecaster or helper was configured with values that cannot work (says which and why)."""

    code = "invalid_config"


class InvalidSeriesError(ForecastingError, ValueError):
    """Input data is malformed: missing columns, unparsable timestamps, infinite values, unknown series."""

    code = "invalid_series"


class NotFittedError(ForecastingError, RuntimeError):
    """A forecaster was asked to update, predict or save before `fit` was called."""

    code = "not_fitted"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"model {model!r} is not fitted: call fit(frame) with history before predict, update or save"
        )
        self.model = model


class InsufficientHistoryError(ForecastingError, ValueError):
    """A series has too few observations for the model; carries how many it has and how many it needs."""

    code = "insufficient_history"

    def __init__(self, model: str, needed: int, got: int, series: str | None = None, hint: str = "") -> None:
        where = f"series {series!r} has" if series is not None else "the data has"
        msg = f"{where} {got} observation(s); model {model!r} needs at least {needed}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)
        self.model = model
        self.needed = needed
        self.got = got
        self.series = series


class UnknownModelError(ForecastingError, KeyError):
    """The registry has no forecaster under the requested name."""

    code = "unknown_model"

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0]) if self.args else ""


def validate_quantiles(levels: Sequence[float]) -> tuple[float, ...]:
    """Check levels are strictly increasing numbers in (0, 1) and return them as a tuple."""
    out = tuple(float(q) for q in levels)
    if not out:
        raise InvalidConfigError("quantile levels must not be empty")
    if any(not (0.0 < q < 1.0) or math.isnan(q) for q in out):
        raise InvalidConfigError(f"quantile levels must lie strictly between 0 and 1, got {out}")
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise InvalidConfigError(f"quantile levels must be strictly increasing, got {out}")
    return out


def quantile_column(level: float) -> str:
    """Column name of one quantile level: 0.5 -> 'q0.5', 0.01 -> 'q0.01'."""
    return f"q{float(level):g}"


def quantile_columns(levels: Sequence[float] = DEFAULT_QUANTILES) -> list[str]:
    """Column names of the quantile levels, in order."""
    return [quantile_column(q) for q in levels]


def forecast_columns(levels: Sequence[float] = DEFAULT_QUANTILES) -> list[str]:
    """Exact, ordered columns of a ForecastFrame with the given quantile levels."""
    return [*ID_COLUMNS, MEAN_COLUMN, *quantile_columns(levels)]


def quantile_levels_of(frame: pd.DataFrame) -> tuple[float, ...]:
    """Read the quantile levels back from a ForecastFrame's `q...` columns (in column order)."""
    levels = []
    for col in frame.columns:
        if isinstance(col, str) and col.startswith("q"):
            try:
                levels.append(float(col[1:]))
            except ValueError:
                continue
    return tuple(levels)


def mean_from_quantiles(q: ArrayLike, levels: ArrayLike) -> np.ndarray:
    """Approximate the mean by integrating a piecewise-linear quantile function (flat beyond the ends).

    `q` has quantile levels on its last axis; the result drops that axis.
    """
    tau = np.asarray(levels, dtype=float)
    # Weight of each knot in the integral of the linear interpolant over [0, 1] with constant tails.
    edges = np.concatenate([[0.0], tau, [1.0]])
    w = np.empty(len(tau))
    w[:] = (edges[2:] - edges[:-2]) / 2.0
    w[0] += tau[0] / 2.0
    w[-1] += (1.0 - tau[-1]) / 2.0
    return np.asarray(q, dtype=float) @ w


def make_forecast_frame(
    *,
    series: Sequence[Any] | np.ndarray,
    metric: Sequence[Any] | np.ndarray,
    cutoff: Any,
    timestamp: Any,
    horizon: Sequence[int] | np.ndarray,
    mean: ArrayLike,
    quantiles: ArrayLike,
    levels: Sequence[float] = DEFAULT_QUANTILES,
    sort_quantiles: bool = True,
) -> pd.DataFrame:
    """Build a ForecastFrame from column arrays; `quantiles` is (rows, len(levels)).

    Quantiles are sorted along each row when `sort_quantiles` (monotone rearrangement, so no crossing).
    """
    levels = validate_quantiles(levels)
    qarr = np.asarray(quantiles, dtype=float)
    n = len(np.asarray(horizon))
    if qarr.ndim != 2 or qarr.shape != (n, len(levels)):
        raise InvalidConfigError(f"quantiles must have shape ({n}, {len(levels)}), got {qarr.shape}")
    if sort_quantiles:
        qarr = np.sort(qarr, axis=1)
    data: dict[str, Any] = {
        "series": pd.Series(np.asarray(series), dtype=object).astype(str),
        "metric": pd.Series(np.asarray(metric), dtype=object).astype(str),
        "cutoff": pd.to_datetime(cutoff, utc=True),
        "timestamp": pd.to_datetime(timestamp, utc=True),
        "horizon": np.asarray(horizon, dtype=np.int64),
        MEAN_COLUMN: np.asarray(mean, dtype=float),
    }
    for j, col in enumerate(quantile_columns(levels)):
        data[col] = qarr[:, j]
    frame = pd.DataFrame(data)
    return frame[forecast_columns(levels)]


def empty_forecast_frame(levels: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
    """A ForecastFrame with no rows but the right columns and dtypes."""
    k = len(levels)
    return make_forecast_frame(
        series=[], metric=[], cutoff=[], timestamp=[], horizon=[], mean=np.empty(0),
        quantiles=np.empty((0, k)), levels=levels,
    )  # fmt: skip


def validate_forecast_frame(frame: pd.DataFrame, levels: Sequence[float] | None = None) -> pd.DataFrame:
    """Raise InvalidSeriesError unless `frame` is a well-formed ForecastFrame; return it unchanged.

    Checks the exact column list, timestamp types, positive horizons, finite values and that quantiles
    do not cross.
    """
    lv = validate_quantiles(levels if levels is not None else quantile_levels_of(frame) or DEFAULT_QUANTILES)
    expected = forecast_columns(lv)
    if list(frame.columns) != expected:
        got = list(frame.columns)
        raise InvalidSeriesError(f"ForecastFrame columns must be exactly {expected}, got {got}")
    for col in ("cutoff", "timestamp"):
        if not isinstance(frame[col].dtype, pd.DatetimeTZDtype):
            raise InvalidSeriesError(f"ForecastFrame column {col!r} must be timezone-aware datetimes (UTC)")
    if len(frame) == 0:
        return frame
    if (frame["horizon"].to_numpy() < 1).any():
        raise InvalidSeriesError("ForecastFrame horizons must be >= 1")
    if (frame["timestamp"] <= frame["cutoff"]).any():
        raise InvalidSeriesError("ForecastFrame timestamps must be after their cutoff")
    q = frame[quantile_columns(lv)].to_numpy(dtype=float)
    values = np.column_stack([q, frame[MEAN_COLUMN].to_numpy(dtype=float)])
    if not np.isfinite(values).all():
        raise InvalidSeriesError("ForecastFrame mean and quantiles must be finite")
    if (np.diff(q, axis=1) < -1e-9 * (1.0 + np.abs(q[:, 1:]))).any():
        raise InvalidSeriesError("ForecastFrame quantiles cross: each row must be non-decreasing in level")
    return frame
