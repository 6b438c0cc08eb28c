"""Rolling-origin backtest without leakage: fit once on the past, then update and predict at every cutoff.

For each entity the last `test_fraction` of its timestamps is the test part. The model is fitted on the
data before it; then, walking forward through the test timestamps in time order, it receives exactly the
observations up to each cutoff via update() and forecasts `horizon` steps. No refit happens, and no row
after a cutoff is ever passed to the model before that cutoff's forecast is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.base import Forecaster
from forecasting.data import (
    canonical_columns,
    infer_season_length,
    normalize_long_frame,
    split_by_time,
    to_utc,
)
from forecasting.metrics import seasonal_naive_scale, summarize
from forecasting.types import InvalidConfigError, empty_forecast_frame, quantile_columns


@dataclass
class BacktestResult:
    """All forecasts of a backtest (one ForecastFrame) and the headline metrics over scored rows."""

    forecasts: pd.DataFrame
    metrics: dict[str, float]
    scored: pd.DataFrame = field(repr=False)


def backtest(
    model: Forecaster,
    frame: pd.DataFrame,
    horizon: int,
    *,
    test_fraction: float = 0.2,
    step: int = 1,
    season_length: int | None = None,
) -> BacktestResult:
    """Fit `model` on data before the test part, then update+predict at every `step`-th test timestamp.

    `season_length` sets the MASE period (default: inferred daily/weekly cycle, else 1).
    """
    if horizon < 1 or step < 1:
        raise InvalidConfigError("horizon and step must be positive integers")
    train, test = split_by_time(frame, test_fraction)
    model.fit(train)
    test = canonical_columns(test)
    ts = to_utc(test["ts"])
    order = np.argsort(ts.to_numpy(), kind="stable")
    test, ts = test.iloc[order], ts.iloc[order]
    ts_sorted = ts.to_numpy()
    cutoffs = np.unique(ts_sorted)[::step]
    allowed = pd.DataFrame({"series": test["series_id"].astype(str).to_numpy(), "cutoff": ts.to_numpy()})
    allowed = allowed.drop_duplicates()
    done = 0
    parts: list[pd.DataFrame] = []
    for c in cutoffs:
        upto = int(np.searchsorted(ts_sorted, c, side="right"))
        if upto > done:
            model.update(test.iloc[done:upto])
            done = upto
        f = model.predict(horizon)
        parts.append(f.loc[f["cutoff"] == c])
    forecasts = pd.concat(parts, ignore_index=True) if parts else empty_forecast_frame(model.quantiles)
    forecasts = forecasts.merge(allowed, on=["series", "cutoff"])  # only the entity's own test cutoffs
    forecasts = forecasts.sort_values(["series", "metric", "cutoff", "horizon"], ignore_index=True)
    metrics, scored = evaluate(forecasts, test, train, model.quantiles, season_length, model.target_metrics)
    return BacktestResult(forecasts, metrics, scored)


def evaluate(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    history: pd.DataFrame,
    levels: tuple[float, ...],
    season_length: int | None = None,
    target_metrics: tuple[str, ...] | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Join forecasts with observed values and compute `metrics.summarize` (MASE scaled on `history`)."""
    act = normalize_long_frame(actuals, target_metrics).frame
    act = act.rename(columns={"series_id": "series", "ts": "timestamp", "value": "y"})
    scored = forecasts.merge(act, on=["series", "metric", "timestamp"])
    hist = normalize_long_frame(history, target_metrics).frame
    if season_length is None:
        sizes = hist.groupby(["series_id", "metric"]).size()
        freq = _freq_of(hist)
        season_length = infer_season_length(freq, int(sizes.min())) if freq is not None else 1
    scales = {
        (str(sid), str(met)): seasonal_naive_scale(g["value"].to_numpy(), season_length)
        for (sid, met), g in hist.groupby(["series_id", "metric"], sort=False)
    }
    row_scale = np.array(
        [scales.get(k, np.nan) for k in zip(scored["series"], scored["metric"], strict=True)], dtype=float
    )
    q = scored[quantile_columns(levels)].to_numpy(dtype=float)
    metrics = summarize(scored["y"].to_numpy(dtype=float), scored["mean"].to_numpy(), q, levels, row_scale)
    metrics["season_length"] = float(season_length)
    metrics["n_cutoffs"] = float(forecasts["cutoff"].nunique())
    return metrics, scored


def _freq_of(hist: pd.DataFrame) -> pd.Timedelta | None:
    diffs = hist.groupby(["series_id", "metric"])["ts"].diff().dropna()
    diffs = diffs[diffs > pd.Timedelta(0)]
    return pd.Timedelta(diffs.mode().iloc[0]) if len(diffs) else None
