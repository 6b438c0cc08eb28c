"""Seasonal naive forecaster with empirical residual quantiles: the reference every model must beat.

The point forecast repeats the value one season earlier (`y[t+h-L]`, `L = P*ceil(h/P)`); quantiles add the
empirical distribution of past lag-L differences of the same series, so intervals widen with the number of
seasons forecast ahead. With no season (P = 1) it is the random-walk naive forecast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting.base import PanelForecaster, register
from forecasting.data import LongData, ffill_rows, infer_season_length, row_quantiles
from forecasting.types import DEFAULT_QUANTILES, InvalidConfigError


@register("seasonal_naive")
class SeasonalNaiveForecaster(PanelForecaster):
    """Repeat last season's value; intervals from the series' own past seasonal differences."""

    name = "seasonal_naive"

    def __init__(
        self,
        *,
        season_length: int | None = None,
        residual_window: int = 2016,
        refresh_every: int = 12,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        if season_length is not None and season_length < 1:
            raise InvalidConfigError(f"season_length must be >= 1, got {season_length}")
        if residual_window < 2:
            raise InvalidConfigError(f"residual_window must be >= 2, got {residual_window}")
        self.season_length = season_length
        self.residual_window = residual_window
        self.refresh_every = refresh_every

    def _configure(self, data: LongData, freq: pd.Timedelta) -> None:
        if self.season_length is not None:
            self._season = self.season_length
            return
        targets = data.frame[data.frame["metric"].isin(data.targets)]
        shortest = int(targets.groupby(["series_id", "metric"]).size().min())
        self._season = infer_season_length(freq, shortest)

    def min_history(self) -> int:
        return self._season + 2

    def history_hint(self) -> str:
        return f"one season of {self._season} step(s) plus 2 to estimate residuals; lower season_length"

    def history_needed(self) -> int:
        return self.residual_window + max(4 * self._season, 256)

    def _fit(self) -> None:
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cache_stamp: tuple[int, int] = (-1, -1)

    def _stamp(self) -> tuple[int, int]:
        total = sum(self._panel.n_obs(k) for k in self._targets)
        return len(self._targets), total

    def _residual_stats(self, lags: Sequence[int], width: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """(quantiles (n, K), mean (n,)) of lag-L differences, cached until enough new data arrives."""
        n_targets, total = self._stamp()
        old_n, old_total = self._cache_stamp
        stale = n_targets != old_n or total - old_total >= self.refresh_every * max(n_targets, 1)
        if stale:
            self._cache = {}
            self._cache_stamp = (n_targets, total)
        missing = [lag for lag in lags if lag not in self._cache]
        if missing:
            tails, _ = self._panel.tails(self._targets, width)
            for lag in missing:
                if lag >= width:
                    diffs = np.full((len(self._targets), 0), np.nan)
                else:
                    diffs = (tails[:, lag:] - tails[:, :-lag])[:, -self.residual_window :]
                q, counts = row_quantiles(diffs, self.quantiles)
                with np.errstate(invalid="ignore"):
                    mean = np.where(counts > 0, np.nansum(diffs, axis=1) / np.maximum(counts, 1), np.nan)
                self._cache[lag] = (q, mean)
        return {lag: self._cache[lag] for lag in lags}

    def _predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        p = self._season
        steps = np.arange(1, horizon + 1)
        lags = p * np.ceil(steps / p).astype(np.int64)
        width = self.history_needed()
        tails, _ = self._panel.tails(self._targets, width)
        filled = ffill_rows(tails)
        point = filled[:, width - 1 + steps - lags]  # (n, H)
        stats = self._residual_stats(sorted(set(lags.tolist())), width)
        n, k = len(self._targets), len(self.quantiles)
        q = np.empty((n, horizon, k))
        bias = np.empty((n, horizon))
        prev: tuple[int, np.ndarray, np.ndarray] | None = None
        for lag in sorted(stats):
            lq, lm = stats[lag]
            lq, lm = lq.copy(), lm.copy()
            if prev is not None:  # too little history for this lag: widen the previous lag's spread
                bad = ~np.isfinite(lq).all(axis=1)
                ratio = np.sqrt(lag / prev[0])
                lq[bad] = prev[1][bad] * ratio
                lm[bad] = prev[2][bad]
            lq = np.nan_to_num(lq)
            lm = np.nan_to_num(lm)
            cols = np.flatnonzero(lags == lag)
            q[:, cols, :] = lq[:, None, :]
            bias[:, cols] = lm[:, None]
            prev = (lag, lq, lm)
        q += point[:, :, None]
        return point + bias, q
