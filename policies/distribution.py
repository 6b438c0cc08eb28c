"""A forecast window as policies read it: quantiles per step, exceedance probabilities, Monte Carlo draws.

Policies never see a DataFrame: the service (or the replay simulator) turns the ForecastFrame rows of one
series into a `QuantileForecast` (steps x levels), and every policy asks it the same questions — the
probability the value exceeds a threshold at some step, a quantile of the window, draws for expectations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecasting.power import exceedance_from_quantiles
from forecasting.types import quantile_columns, quantile_levels_of
from policies.types import InvalidPolicyInput


@dataclass(frozen=True)
class QuantileForecast:
    """Quantiles of one series over the next `steps` (rows) at increasing `levels` (columns)."""

    levels: tuple[float, ...]
    values: np.ndarray
    step_seconds: float = 60.0

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=float)
        if values.ndim == 1:
            values = values[None, :]
        if values.ndim != 2 or values.shape[1] != len(self.levels) or values.shape[0] == 0:
            raise InvalidPolicyInput(
                f"forecast quantiles must be (steps, {len(self.levels)}) for levels {self.levels}, "
                f"got shape {np.shape(self.values)}"
            )
        if len(self.levels) < 2 or any(b <= a for a, b in zip(self.levels, self.levels[1:], strict=False)):
            raise InvalidPolicyInput(f"quantile levels must be at least two, increasing: {self.levels}")
        if not np.isfinite(values).all():
            raise InvalidPolicyInput("forecast quantiles must be finite numbers")
        object.__setattr__(self, "values", np.sort(values, axis=1))  # never crossing

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, step_seconds: float | None = None) -> QuantileForecast:
        """From the ForecastFrame rows of one series and one cutoff (ordered by horizon)."""
        if frame.empty:
            raise InvalidPolicyInput("the forecast has no rows")
        levels = quantile_levels_of(frame)
        ordered = frame.sort_values("horizon")
        if step_seconds is None:
            stamps = pd.to_datetime(ordered["timestamp"], utc=True)
            deltas = stamps.diff().dropna().dt.total_seconds()
            step_seconds = float(deltas.median()) if len(deltas) else 60.0
        return cls(levels, ordered[quantile_columns(levels)].to_numpy(dtype=float), float(step_seconds))

    @classmethod
    def point(cls, value: float, steps: int = 1, spread: float = 0.0) -> QuantileForecast:
        """A (nearly) certain forecast: used by baselines and tests."""
        levels = (0.05, 0.5, 0.95)
        row = [value - spread, value, value + spread]
        return cls(levels, np.tile(row, (steps, 1)))

    @property
    def steps(self) -> int:
        return int(self.values.shape[0])

    def scaled(self, factor: float | np.ndarray) -> QuantileForecast:
        """The forecast of `factor * X` (factor > 0, one number or one per step)."""
        f = np.asarray(factor, dtype=float)
        return QuantileForecast(self.levels, self.values * (f[:, None] if f.ndim else f), self.step_seconds)

    def exceedance(self, threshold: float | np.ndarray) -> np.ndarray:
        """P(X_t > threshold) for every step t (continuous CDF between knots, exponential tails)."""
        return exceedance_from_quantiles(self.values, self.levels, threshold)

    def exceedance_at(self, rows: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """P(X > threshold) for quantile rows taken from this forecast (e.g. tiled over candidates)."""
        return exceedance_from_quantiles(rows, self.levels, thresholds)

    def window_exceedance(self, threshold: float) -> float:
        """P(the value exceeds `threshold` at the worst step of the window) — the per-step chance
        constraint policies enforce (the union bound would count the same burst once per step)."""
        return float(self.exceedance(threshold).max())

    def quantile(self, level: float) -> np.ndarray:
        """The `level` quantile at every step (linear between knots, clamped to the outermost ones)."""
        return np.array([np.interp(level, self.levels, row) for row in self.values])

    def window_quantile(self, level: float) -> float:
        """The largest per-step `level` quantile over the window."""
        return float(self.quantile(level).max())

    def median(self) -> np.ndarray:
        return self.quantile(0.5)

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, steps) draws by inverse-CDF sampling; one uniform per draw shared across steps (comonotone),
        which is how a burst that lifts one step lifts its neighbours. Beyond the outermost levels the
        tails are exponential (as in `exceedance_from_quantiles`), so tail risk is not cut off."""
        return self.inverse_cdf(rng.uniform(size=n))

    def inverse_cdf(self, u: np.ndarray) -> np.ndarray:
        """(len(u), steps) values at probabilities `u` (linear between knots, exponential tails)."""
        tau = np.asarray(self.levels)
        u = np.clip(np.asarray(u, dtype=float), 1e-9, 1.0 - 1e-9)
        out = np.stack([np.interp(u, tau, row) for row in self.values], axis=1)
        q = self.values
        theta_lo = (q[:, 1] - q[:, 0]) / np.log(tau[1] / tau[0])
        theta_hi = (q[:, -1] - q[:, -2]) / np.log((1.0 - tau[-2]) / (1.0 - tau[-1]))
        low, high = u < tau[0], u > tau[-1]
        out[low] = q[None, :, 0] - theta_lo[None, :] * np.log(tau[0] / u[low])[:, None]
        out[high] = q[None, :, -1] + theta_hi[None, :] * np.log((1.0 - tau[-1]) / (1.0 - u[high]))[:, None]
        return out

    def summary(self, levels: Sequence[float] = (0.1, 0.5, 0.9, 0.99)) -> dict[str, Any]:
        """The evidence a Decision records: per-step quantiles at a few levels and the step size."""
        return {
            "step_seconds": self.step_seconds,
            "steps": self.steps,
            "quantiles": {f"q{lv:g}": np.round(self.quantile(lv), 6).tolist() for lv in levels},
        }
