"""Accuracy and calibration metrics for quantile forecasts, vectorised with numpy.

Conventions: `y` has shape (n,), quantile arrays `q` have shape (n, K) with levels `levels` (K,).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

DEFAULT_COVERAGE_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.95)


Arrays3 = tuple[np.ndarray, np.ndarray, np.ndarray]


def _arrays(y: ArrayLike, q: ArrayLike, levels: ArrayLike) -> Arrays3:
    ya = np.asarray(y, dtype=float).reshape(-1)
    qa = np.asarray(q, dtype=float).reshape(len(ya), -1)
    ta = np.asarray(levels, dtype=float)
    if qa.shape[1] != len(ta):
        raise ValueError(f"q has {qa.shape[1]} quantile columns but {len(ta)} levels were given")
    return ya, qa, ta


def pinball_loss(y: ArrayLike, q: ArrayLike, levels: ArrayLike) -> np.ndarray:
    """Elementwise pinball (quantile) loss, shape (n, K): tau*(y-q) if y >= q else (1-tau)*(q-y)."""
    ya, qa, ta = _arrays(y, q, levels)
    diff = ya[:, None] - qa
    return np.maximum(ta * diff, (ta - 1.0) * diff)


def mean_pinball_loss(y: ArrayLike, q: ArrayLike, levels: ArrayLike) -> np.ndarray:
    """Mean pinball loss per quantile level, shape (K,)."""
    return pinball_loss(y, q, levels).mean(axis=0)


def weighted_quantile_loss(y: ArrayLike, q: ArrayLike, levels: ArrayLike) -> float:
    """wQL (GluonTS): mean over levels of 2 * sum(pinball) / sum(|y|); scale-free across series."""
    ya = np.asarray(y, dtype=float).reshape(-1)
    denom = np.abs(ya).sum()
    if denom == 0.0:
        return float("nan")
    return float((2.0 * pinball_loss(y, q, levels).sum(axis=0) / denom).mean())


def crps_weights(levels: ArrayLike) -> np.ndarray:
    """Quadrature weights of each level for integrating over tau in (0, 1) (midpoint rule, sum to 1)."""
    ta = np.asarray(levels, dtype=float)
    edges = np.concatenate([[0.0], (ta[1:] + ta[:-1]) / 2.0, [1.0]])
    return np.diff(edges)


def crps_from_quantiles(y: ArrayLike, q: ArrayLike, levels: ArrayLike) -> float:
    """Mean CRPS approximated as the integral over tau of 2 * pinball, by quadrature on the given levels."""
    w = crps_weights(levels)
    return float((2.0 * pinball_loss(y, q, levels) @ w).mean())


def interpolate_quantiles(q: ArrayLike, levels: ArrayLike, new_levels: ArrayLike) -> np.ndarray:
    """Quantiles at `new_levels` by linear interpolation in tau (flat beyond the outermost levels)."""
    qa = np.asarray(q, dtype=float)
    ta = np.asarray(levels, dtype=float)
    targets = np.asarray(new_levels, dtype=float).reshape(-1)
    out = np.empty((*qa.shape[:-1], len(targets)))
    for j, t in enumerate(targets):
        hi = int(np.searchsorted(ta, t))
        if hi < len(ta) and np.isclose(ta[hi], t):
            out[..., j] = qa[..., hi]
        elif hi == 0:
            out[..., j] = qa[..., 0]
        elif hi == len(ta):
            out[..., j] = qa[..., -1]
        else:
            lo = hi - 1
            frac = (t - ta[lo]) / (ta[hi] - ta[lo])
            out[..., j] = qa[..., lo] + frac * (qa[..., hi] - qa[..., lo])
    return out


def interval_coverage(y: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Fraction of observations inside [lower, upper]."""
    ya = np.asarray(y, dtype=float)
    return float(((ya >= np.asarray(lower)) & (ya <= np.asarray(upper))).mean())


def coverage(y: ArrayLike, q: ArrayLike, levels: ArrayLike, nominal: float) -> float:
    """Coverage of the central `nominal` interval (e.g. 0.8 -> q0.1..q0.9, interpolated if missing)."""
    alpha = (1.0 - nominal) / 2.0
    bounds = interpolate_quantiles(q, levels, [alpha, 1.0 - alpha])
    return interval_coverage(y, bounds[..., 0], bounds[..., 1])


def mae(y: ArrayLike, yhat: ArrayLike) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(y, dtype=float) - np.asarray(yhat, dtype=float))))


def rmse(y: ArrayLike, yhat: ArrayLike) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(y, dtype=float) - np.asarray(yhat, dtype=float)) ** 2)))


def seasonal_naive_scale(history: ArrayLike, period: int = 1) -> float:
    """MASE denominator: mean |y_t - y_{t-period}| over in-sample history (NaN ignored)."""
    h = np.asarray(history, dtype=float)
    if period < 1 or len(h) <= period:
        return float("nan")
    d = np.abs(h[period:] - h[:-period])
    d = d[np.isfinite(d)]
    return float(d.mean()) if len(d) else float("nan")


def mase(y: ArrayLike, yhat: ArrayLike, scale: ArrayLike) -> float:
    """Mean absolute scaled error; `scale` is per row (or one number) from `seasonal_naive_scale`.

    Rows whose scale is zero or NaN (constant history) are left out.
    """
    s = np.broadcast_to(np.asarray(scale, dtype=float), np.shape(y))
    ok = np.isfinite(s) & (s > 0)
    if not ok.any():
        return float("nan")
    err = np.abs(np.asarray(y, dtype=float) - np.asarray(yhat, dtype=float))
    return float((err[ok] / s[ok]).mean())


def summarize(
    y: ArrayLike,
    mean: ArrayLike,
    q: ArrayLike,
    levels: ArrayLike,
    scale: ArrayLike | None = None,
    coverage_levels: Sequence[float] = DEFAULT_COVERAGE_LEVELS,
) -> dict[str, float]:
    """All headline metrics in one dict; rows with a non-finite observation are ignored.

    Point metrics use the median (MAE, MASE) and the mean (RMSE).
    """
    ya, qa, ta = _arrays(y, q, levels)
    ok = np.isfinite(ya)
    ya, qa, ma = ya[ok], qa[ok], np.asarray(mean, dtype=float).reshape(-1)[ok]
    out: dict[str, float] = {"n": float(len(ya))}
    if len(ya) == 0:
        return out
    median = interpolate_quantiles(qa, ta, [0.5])[:, 0]
    out["wql"] = weighted_quantile_loss(ya, qa, ta)
    out["crps"] = crps_from_quantiles(ya, qa, ta)
    for nominal in coverage_levels:
        out[f"coverage_{round(nominal * 100):d}"] = coverage(ya, qa, ta, nominal)
    out["mae"] = mae(ya, median)
    out["rmse"] = rmse(ya, ma)
    if scale is not None:
        s = np.broadcast_to(np.asarray(scale, dtype=float), ok.shape)[ok]
        out["mase"] = mase(ya, median, s)
    return out
