"""Seasonal-window forecaster: what happened around this time of day on recent days, at today's level.

For a target step `tau` it gathers the values at `tau - d*P + j` for the last `seasons` days `d` and the
offsets `|j| <= half_width` (a job that runs "around 03:00" lands a few steps earlier or later each day),
shifts each day's values by how much the level moved since then (median of the last `level_window`
observations now against the same window `d` seasons ago, so a level shift carries over and a spike
does not), and reports the empirical quantiles of that sample. A recurring burst whose exact step
jitters therefore shows up as a probability in its neighbourhood, which a point-lag model (seasonal
naive) misses on most days. Positions later than the last observation are never used (no look-ahead);
before one season of history it is the naive forecast: the last value plus the spread of recent
h-step changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting.base import PanelForecaster, register
from forecasting.data import LongData, calendar_periods, ffill_rows, row_quantiles
from forecasting.types import DEFAULT_QUANTILES, InvalidConfigError


@register("seasonal_window")
class SeasonalWindowForecaster(PanelForecaster):
    """Empirical quantiles of the same time-of-day neighbourhood over recent days, level-adjusted."""

    name = "seasonal_window"

    def __init__(
        self,
        *,
        season_length: int | None = None,
        seasons: int = 7,
        half_width: int = 3,
        level_window: int = 6,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        problems = []
        if season_length is not None and season_length < 2:
            problems.append(f"season_length must be >= 2, got {season_length}")
        if seasons < 1:
            problems.append(f"seasons must be >= 1, got {seasons}")
        if half_width < 0:
            problems.append(f"half_width must be >= 0, got {half_width}")
        if level_window < 1:
            problems.append(f"level_window must be >= 1, got {level_window}")
        if problems:
            raise InvalidConfigError("; ".join(problems))
        self.season_length = season_length
        self.seasons = seasons
        self.half_width = half_width
        self.level_window = level_window

    def _configure(self, data: LongData, freq: pd.Timedelta) -> None:
        periods = calendar_periods(freq)
        # the daily cycle when the grid has one (no need to have seen it twice: before a full season
        # the recent-window fallback answers)
        self._season = self.season_length or (periods[0] if periods else 2)

    def min_history(self) -> int:
        return 2

    def history_hint(self) -> str:
        return "two observations (the naive fallback) until a season has been seen"

    def history_needed(self) -> int:
        return self.seasons * self._season + self.half_width + self.level_window + 1

    def _fit(self) -> None:
        """Nothing to learn: the forecast is read from the kept history at predict time."""

    def _predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        p, span, m = self._season, self.half_width, self.level_window
        width = self.history_needed()
        tails, _ = self._panel.tails(self._targets, width)
        seen = np.isfinite(tails)
        values = ffill_rows(tails)
        last = width - 1
        n = len(self._targets)
        samples = np.full((n, horizon, self.seasons * (2 * span + 1)), np.nan)
        offsets = np.arange(-span, span + 1)
        for d in range(1, self.seasons + 1):
            then = last - d * p  # the "now" of d seasons ago
            if then - m + 1 < 0:
                break
            shift = np.median(values[:, last - m + 1 :], axis=1) - np.median(
                values[:, then - m + 1 : then + 1], axis=1
            )
            for h in range(1, horizon + 1):
                pos = then + h + offsets
                usable = (pos >= 0) & (pos <= last)  # never a value observed after the last one
                cols = slice((d - 1) * len(offsets), d * len(offsets))
                block = np.where(usable[None, :], values[:, np.clip(pos, 0, last)], np.nan)
                block = np.where(seen[:, np.clip(pos, 0, last)] | ~usable[None, :], block, np.nan)
                samples[:, h - 1, cols] = block + shift[:, None]
        empty = ~np.isfinite(samples).any(axis=2)
        if empty.any():  # no season seen yet: naive, the last value plus recent h-step changes
            grown = seen.sum(axis=1)
            for h in range(1, horizon + 1):
                rows = np.flatnonzero(empty[:, h - 1])
                # only the newest changes are kept, so only they are computed (not the whole window)
                start = max(width - h - samples.shape[2], 0)
                changes = values[rows, start + h :] - values[rows, start : width - h]
                starts = start + np.arange(changes.shape[1])
                young = starts[None, :] < (width - grown[rows])[:, None]  # before the data
                changes = np.where(young, np.nan, changes)
                samples[rows, h - 1, : changes.shape[1]] = values[rows, last][:, None] + changes
        flat = samples.reshape(n * horizon, -1)
        q, counts = row_quantiles(flat, self.quantiles)
        with np.errstate(invalid="ignore"):
            mean = np.nansum(flat, axis=1) / np.maximum(counts, 1)
        last_value = np.repeat(values[:, last], horizon)
        q = np.where(counts[:, None] > 0, q, last_value[:, None])
        mean = np.where(counts > 0, mean, last_value)
        if (values[np.isfinite(values)] >= 0).all():  # a non-negative series stays non-negative
            q, mean = np.maximum(q, 0.0), np.maximum(mean, 0.0)
        return mean.reshape(n, horizon), q.reshape(n, horizon, len(self.quantiles))
