"""statsforecast's AutoETS and AutoTheta as Foresight forecasters, with a cheap route for long seasons.

AutoETS with `season_length=288` (a daily cycle at 5-minute steps) costs seconds per series, so a seasonal
series is first deseasonalized by its seasonal profile (MSTL-style: the mean of each phase over the last
`profile_seasons` seasons after removing a one-season moving-average trend), the non-seasonal model is
fitted on what is left and the profile is added back to the forecast. Models are fitted per series on
the last `fit_window` points (the cost bound); `update` keeps the fitted parameters and `predict` runs
them forward over the latest history (statsforecast's `forward`, no refit). Intervals are the models'
Gaussian ones, read at any quantile level from the 80 % interval's width. A series the model cannot fit
(constant, too short) falls back to the naive forecast with the spread of its one-step changes; series
whose training values are all non-negative get non-negative forecasts.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from forecasting.base import PanelForecaster, register
from forecasting.data import Key, LongData, calendar_periods, ffill_rows
from forecasting.types import DEFAULT_QUANTILES, InvalidConfigError

_KINDS = ("ets", "theta")
_MIN_FIT = 10  # fewer points than this: the naive fallback


class StatsForecaster(PanelForecaster):
    """Per-series AutoETS / AutoTheta on the deseasonalized recent window."""

    name = "stats"

    def __init__(
        self,
        *,
        kind: str = "ets",
        season_length: int | None = None,
        fit_window: int = 672,
        profile_seasons: int = 4,
        min_strength: float = 0.2,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        if kind not in _KINDS:
            raise InvalidConfigError(f"kind must be one of {_KINDS}, got {kind!r}")
        if season_length is not None and season_length < 1:
            raise InvalidConfigError(f"season_length must be >= 1, got {season_length}")
        if fit_window < _MIN_FIT or profile_seasons < 1:
            raise InvalidConfigError(f"fit_window must be >= {_MIN_FIT} and profile_seasons >= 1")
        self.kind = kind
        self.season_length = season_length
        self.fit_window = fit_window
        self.profile_seasons = profile_seasons
        self.min_strength = min_strength

    def _configure(self, data: LongData, freq: pd.Timedelta) -> None:
        if self.season_length is not None:
            self._season = self.season_length
            return
        periods = calendar_periods(freq)
        self._season = periods[0] if periods else 1

    def min_history(self) -> int:
        return 2

    def history_hint(self) -> str:
        return "a level and one change (the naive fallback); the statistical model needs 10 or more"

    def history_needed(self) -> int:
        return max(self.fit_window, (self.profile_seasons + 2) * self._season)

    # ---- per-series pieces -----------------------------------------------------------------------
    def _profile(self, y: np.ndarray, end_pos: int) -> np.ndarray | None:
        """Zero-mean seasonal profile by absolute phase (pos mod P), or None without two seasons or
        without a seasonal pattern worth removing.

        Classical decomposition: the trend is a centred moving average over one season, the profile the
        mean of what is left at each phase over the last `profile_seasons` seasons. The profile is used
        only when it explains at least `min_strength` of the detrended variance (Hyndman's seasonal
        strength, unitless), so a trend or noise is not mistaken for a season.
        """
        p = self._season
        if p < 2 or len(y) < 2 * p:
            return None
        csum = np.concatenate([[0.0], np.cumsum(y)])
        half = p // 2
        trend = np.full(len(y), np.nan)
        trend[half : len(y) - (p - half) + 1] = (csum[p:] - csum[:-p]) / p
        detrended = y - trend
        n = min(len(y), (self.profile_seasons + 1) * p)
        recent = detrended[-n:]
        phase = (np.arange(end_pos - n + 1, end_pos + 1)) % p
        ok = np.isfinite(recent)
        sums = np.bincount(phase[ok], weights=recent[ok], minlength=p)
        counts = np.bincount(phase[ok], minlength=p)
        if (counts == 0).any():
            return None
        prof = sums / counts
        prof -= prof.mean()
        remainder = recent[ok] - prof[phase[ok]]
        total = float(np.var(recent[ok]))
        if total <= 0 or 1.0 - float(np.var(remainder)) / total < self.min_strength:
            return None
        return prof

    def _make(self) -> Any:
        from statsforecast.models import AutoETS, AutoTheta

        return AutoETS(season_length=1) if self.kind == "ets" else AutoTheta(season_length=1)

    def _fit_one(self, key: Key) -> None:
        y, end = self._series(key)
        prof = self._profile(y, end)
        z = y if prof is None else y - prof[np.arange(end - len(y) + 1, end + 1) % self._season]
        model = None
        if len(z) >= _MIN_FIT and np.nanstd(z) > 1e-9 * max(1.0, float(np.abs(z).mean())):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = self._make().fit(z.astype(np.float64))
            except Exception:  # statsforecast rejects some series (e.g. degenerate); naive serves them
                model = None
        self._models[key] = model
        self._profiles[key] = prof
        self._nonneg[key] = bool(np.nanmin(y) >= 0)

    def _series(self, key: Key) -> tuple[np.ndarray, int]:
        """The last `fit_window` values (gaps filled forward) and the position of the last one."""
        tails, last = self._panel.tails([key], self.fit_window)
        row = tails[0]
        seen = np.flatnonzero(np.isfinite(row))
        row = ffill_rows(row[seen[0] :][None, :])[0] if len(seen) else row[-1:]
        return row, int(last[0])

    def _fit(self) -> None:
        self._models: dict[Key, Any] = {}
        self._profiles: dict[Key, np.ndarray | None] = {}
        self._nonneg: dict[Key, bool] = {}
        for key in self._targets:
            self._fit_one(key)

    def _forecast_one(self, key: Key, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        if key not in self._models:  # first seen in update(): fit it now
            self._fit_one(key)
        y, end = self._series(key)
        prof = self._profiles[key]
        season = self._season
        z = y if prof is None else y - prof[np.arange(end - len(y) + 1, end + 1) % season]
        model = self._models[key]
        z90 = stats.norm.ppf(0.9)
        out = None
        if model is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out = model.forward(y=z.astype(np.float64), h=horizon, level=[80])
            except Exception:
                out = None
        if out is not None and np.isfinite(out["mean"]).all() and np.isfinite(out["hi-80"]).all():
            mean = np.asarray(out["mean"], dtype=float)
            sigma = np.maximum((np.asarray(out["hi-80"], dtype=float) - mean) / z90, 0.0)
        else:  # naive: last value, spread of one-step changes growing like a random walk
            d = np.diff(z[-min(len(z), 500) :])
            sd = float(np.std(d)) if len(d) > 1 else 0.0
            mean = np.full(horizon, z[-1])
            sigma = sd * np.sqrt(np.arange(1, horizon + 1))
        if prof is not None:
            mean = mean + prof[np.arange(end + 1, end + horizon + 1) % season]
        return mean, sigma

    def _predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        zq = stats.norm.ppf(self.quantiles)
        n = len(self._targets)
        mean = np.empty((n, horizon))
        q = np.empty((n, horizon, len(self.quantiles)))
        for r, key in enumerate(self._targets):
            m, s = self._forecast_one(key, horizon)
            qs = m[:, None] + s[:, None] * zq[None, :]
            if self._nonneg.get(key, False):
                qs, m = np.maximum(qs, 0.0), np.maximum(m, 0.0)
            mean[r], q[r] = m, qs
        return mean, q


@register("autoets")
def autoets(**config: Any) -> StatsForecaster:
    """statsforecast AutoETS per series (long seasons deseasonalized by their profile first)."""
    return StatsForecaster(kind="ets", **config)


@register("autotheta")
def autotheta(**config: Any) -> StatsForecaster:
    """statsforecast AutoTheta per series (long seasons deseasonalized by their profile first)."""
    return StatsForecaster(kind="theta", **config)
