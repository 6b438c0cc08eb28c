"""FFT dominant-cycle forecaster in the style of Crane's DSP predictor.

Per series: find the dominant period from the FFT amplitude spectrum of the detrended history, cut the
window to a whole number of periods, keep the strongest `n_harmonics` harmonics of that period, fit them
jointly with a linear trend by least squares and extrapolate. Intervals come from the in-sample residuals.
Fits are cached and refreshed after `refresh_every` new observations per series, so updates are cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.base import PanelForecaster, register
from forecasting.data import Key, ffill_rows, row_quantiles
from forecasting.types import DEFAULT_QUANTILES, InvalidConfigError


@dataclass
class _CycleFit:
    """Harmonic model of one series, positioned on the absolute grid."""

    start: int  # absolute grid position of window index 0
    length: int  # window length (a whole number of dominant periods when one was found)
    slope: float
    intercept: float
    freqs: np.ndarray  # cycles per window (integers)
    cos_coef: np.ndarray
    sin_coef: np.ndarray
    resid_q: np.ndarray  # (K,) residual quantiles
    resid_mean: float
    period: float

    def value(self, positions: np.ndarray) -> np.ndarray:
        j = (positions - self.start).astype(float)
        angle = 2.0 * np.pi * np.outer(j, self.freqs) / self.length
        waves = np.cos(angle) @ self.cos_coef + np.sin(angle) @ self.sin_coef
        return self.intercept + self.slope * j + waves


@register("fft_period")
class FftPeriodForecaster(PanelForecaster):
    """Extrapolate the strongest FFT components of a detrended window; residual-quantile intervals."""

    name = "fft_period"

    def __init__(
        self,
        *,
        max_window: int = 4032,
        n_harmonics: int = 8,
        detrend: bool = True,
        refresh_every: int = 12,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        if max_window < 8 or n_harmonics < 1:
            raise InvalidConfigError("max_window must be >= 8 and n_harmonics >= 1")
        self.max_window = max_window
        self.n_harmonics = n_harmonics
        self.detrend = detrend
        self.refresh_every = refresh_every

    def min_history(self) -> int:
        return 8

    def history_hint(self) -> str:
        return "enough points to see at least a few samples of a cycle"

    def history_needed(self) -> int:
        return self.max_window

    def _fit(self) -> None:
        self._fits: dict[Key, _CycleFit] = {}
        self._fit_count: dict[Key, int] = {}
        self._refit(self._targets)

    def _refit(self, keys: Sequence[Key]) -> None:
        if not keys:
            return
        tails, last = self._panel.tails(list(keys), self.max_window)
        filled = ffill_rows(tails)
        for r, key in enumerate(keys):
            valid = np.flatnonzero(np.isfinite(tails[r]))
            x = filled[r, valid[0] :]
            start = int(last[r]) - len(x) + 1
            self._fits[key] = self._fit_one(x, start)
            self._fit_count[key] = self._panel.n_obs(key)

    def _fit_one(self, x: np.ndarray, start: int) -> _CycleFit:
        n = len(x)
        period = float("nan")
        spec = np.abs(np.fft.rfft(self._detrended(x)))
        if n // 2 > 2:
            k_star = 2 + int(np.argmax(spec[2 : n // 2]))  # at least two full cycles in the window
            period = float(max(2, round(n / k_star)))  # grid data: periods are whole steps
            whole = int(n // period * period)
            if whole >= 8:
                x, start = x[n - whole :], start + (n - whole)
                n = whole
        resid = self._detrended(x)
        coef = np.fft.rfft(resid)
        cycles = round(n / period) if np.isfinite(period) and n % int(period) == 0 else 1
        # Harmonics of the dominant period only (slower bins would wrap around the window when
        # extrapolated); skip DC, which the intercept carries, and Nyquist.
        usable = np.arange(cycles, (n - 1) // 2 + 1, cycles)
        if len(usable) == 0:
            usable = np.arange(1, max(2, (n - 1) // 2 + 1))
        top = np.sort(usable[np.argsort(np.abs(coef[usable]))[::-1][: self.n_harmonics]]).astype(float)
        # Joint least squares of level, trend and the chosen harmonics: fitting the trend alone first
        # would let it soak up part of the cycle and bias the extrapolation.
        j = np.arange(n, dtype=float)
        angle = 2.0 * np.pi * np.outer(j, top) / n
        trend_cols = [np.ones(n), j] if self.detrend else [np.ones(n)]
        design = np.column_stack([*trend_cols, np.cos(angle), np.sin(angle)])
        beta, *_ = np.linalg.lstsq(design, x, rcond=None)
        nt = len(trend_cols)
        slope = float(beta[1]) if self.detrend else 0.0
        k = len(top)
        fit = _CycleFit(start, n, slope, float(beta[0]), top, beta[nt : nt + k], beta[nt + k :],
                        np.zeros(len(self.quantiles)), 0.0, period)  # fmt: skip
        insample = x - fit.value(start + np.arange(n))
        q, _ = row_quantiles(insample[None, :], self.quantiles)
        fit.resid_q = q[0]
        fit.resid_mean = float(insample.mean())
        return fit

    def _detrended(self, x: np.ndarray) -> np.ndarray:
        if not self.detrend or len(x) < 3:
            return x - x.mean()
        j = np.arange(len(x), dtype=float)
        slope, intercept = np.polyfit(j, x, 1)
        return x - (intercept + slope * j)

    def _update(self, changed: list[Key]) -> None:
        stale = [
            k
            for k in self._targets
            if k not in self._fits or self._panel.n_obs(k) - self._fit_count[k] >= self.refresh_every
        ]
        self._refit(stale)

    def _predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        last = self._panel.last_pos(self._targets)
        steps = np.arange(1, horizon + 1)
        n, k = len(self._targets), len(self.quantiles)
        mean = np.empty((n, horizon))
        q = np.empty((n, horizon, k))
        for r, key in enumerate(self._targets):
            fit = self._fits[key]
            point = fit.value(last[r] + steps)
            mean[r] = point + fit.resid_mean
            q[r] = point[:, None] + fit.resid_q[None, :]
        return mean, q
