"""Causal features for global tree models: lags, rolling stats, seasonal lags, calendar, covariates.

Training and prediction share this one code path, and every feature at origin `p` reads only positions
`<= p` (bounds-checked against each series' last known position), which is what makes the model
leakage-free by construction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_NS_PER_S = 1_000_000_000


@dataclass
class FlatHistory:
    """Many series concatenated into one array, each preceded by `pad` NaNs, with rolling statistics."""

    values: np.ndarray
    base: np.ndarray  # flat index of each series' first stored position
    start: np.ndarray  # absolute grid position of each series' first stored value
    end: np.ndarray  # absolute grid position of each series' last stored value
    pad: int
    roll_mean: dict[int, np.ndarray]
    roll_std: dict[int, np.ndarray]

    @classmethod
    def build(
        cls,
        starts: Sequence[int] | np.ndarray,
        arrays: Sequence[np.ndarray],
        pad: int,
        windows: Sequence[int],
    ) -> FlatHistory:
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        base = pad + np.concatenate([[0], np.cumsum(lengths + pad)[:-1]]).astype(np.int64)
        values = np.full(int((lengths + pad).sum()), np.nan)
        centred = np.full_like(values, np.nan)
        inside = np.zeros(len(values), dtype=bool)
        for i, arr in enumerate(arrays):
            values[base[i] : base[i] + len(arr)] = arr
            centre = np.nanmean(arr) if np.isfinite(arr).any() else 0.0
            centred[base[i] : base[i] + len(arr)] = arr - centre
            inside[base[i] : base[i] + len(arr)] = True
        offsets = values - centred  # per-series centre (NaN where no value)
        ok = np.isfinite(centred)
        c1 = np.concatenate([[0.0], np.cumsum(np.where(ok, centred, 0.0))])
        c2 = np.concatenate([[0.0], np.cumsum(np.where(ok, centred * centred, 0.0))])
        cn = np.concatenate([[0], np.cumsum(ok)])
        idx = np.arange(len(values)) + 1
        centre_at = _ffill(offsets)
        roll_mean: dict[int, np.ndarray] = {}
        roll_std: dict[int, np.ndarray] = {}
        for w in windows:
            lo = np.maximum(idx - w, 0)
            n = (cn[idx] - cn[lo]).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                m = (c1[idx] - c1[lo]) / n
                var = np.maximum((c2[idx] - c2[lo]) / n - m * m, 0.0)
            m[(n == 0) | ~inside] = np.nan
            var[(n < 2) | ~inside] = np.nan
            roll_mean[w] = m + centre_at
            roll_std[w] = np.sqrt(var)
        starts_arr = np.asarray(starts, dtype=np.int64)
        return cls(values, base, starts_arr, starts_arr + lengths - 1, pad, roll_mean, roll_std)

    def gather(self, s: np.ndarray, pos: np.ndarray, source: np.ndarray | None = None) -> np.ndarray:
        """Values of series `s` at absolute positions `pos`; NaN outside what is known (s = -1 is none)."""
        src = self.values if source is None else source
        si = np.maximum(s, 0)
        ok = (s >= 0) & (pos >= self.start[si] - self.pad) & (pos <= self.end[si])
        idx = np.where(ok, self.base[si] + pos - self.start[si], 0)
        return np.where(ok, src[idx], np.nan)


def _ffill(x: np.ndarray) -> np.ndarray:
    idx = np.where(np.isfinite(x), np.arange(len(x)), 0)
    np.maximum.accumulate(idx, out=idx)
    return x[idx]


@dataclass(frozen=True)
class FeatureSpec:
    """Which features to build; fixed at fit time and saved with the model."""

    n_lags: int
    windows: tuple[int, ...]
    anchor_window: int
    periods: tuple[int, ...]
    calendar: bool
    cov_metrics: tuple[str, ...]
    cov_lags: int
    origin_ns: int
    freq_ns: int

    def lookback(self, max_horizon: int) -> int:
        """History (grid points) a prediction needs before its origin."""
        seasonal = [(-(-max_horizon // p) + 1) * p for p in self.periods]
        return max([self.n_lags, self.cov_lags, *self.windows, self.anchor_window, *seasonal]) + 1

    def names(self) -> list[str]:
        """Feature column names, in matrix order."""
        out = ["horizon", "metric", "level_over_scale", "log_scale"]
        out += [f"lag{lag}" for lag in range(self.n_lags)]
        for w in self.windows:
            out += [f"mean{w}", f"std{w}"]
        for p in self.periods:
            out += [f"season{p}", f"season{p}_prev", f"season{p}_change"]
        if self.calendar:
            out += ["hour", "weekday"]
        for j, m in enumerate(self.cov_metrics):
            safe = re.sub(r"[^0-9A-Za-z]+", "_", m)[:40]  # LightGBM rejects JSON characters in names
            out += [f"cov{j}_{safe}_lag{lag}" for lag in range(self.cov_lags)]
            out.append(f"cov{j}_{safe}_change")
        return out


def build_features(
    spec: FeatureSpec,
    hist: FlatHistory,
    s: np.ndarray,
    origin: np.ndarray,
    h: np.ndarray,
    scale: np.ndarray,
    metric_code: np.ndarray,
    cov_series: np.ndarray,
    cov_scale: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix (rows, F) and the anchor level of each row; the target is (y[origin+h]-anchor)/scale.

    `cov_series`/`cov_scale` are (rows, M): the flat-history index and scale of each covariate metric of
    the row's entity (-1 when the entity lacks it).
    """
    cols: list[np.ndarray] = []
    last = hist.gather(s, origin)
    anchor = hist.gather(s, origin, hist.roll_mean[spec.anchor_window])
    anchor = np.where(np.isfinite(anchor), anchor, last)

    def rel(values: np.ndarray) -> np.ndarray:
        return (values - anchor) / scale

    cols += [h.astype(float), metric_code.astype(float), anchor / scale, np.log(scale)]
    for lag in range(spec.n_lags):
        cols.append(rel(hist.gather(s, origin - lag)))
    for w in spec.windows:
        cols.append(rel(hist.gather(s, origin, hist.roll_mean[w])))
        cols.append(hist.gather(s, origin, hist.roll_std[w]) / scale)
    for p in spec.periods:
        back = -(-h // p) * p  # whole seasons back so the seasonal lag is in the past
        cols.append(rel(hist.gather(s, origin + h - back)))
        cols.append(rel(hist.gather(s, origin + h - back - p)))
        cols.append((last - hist.gather(s, origin - p)) / scale)
    if spec.calendar:
        secs = (spec.origin_ns + (origin + h) * spec.freq_ns) // _NS_PER_S
        cols.append((secs % 86400) / 3600.0)
        cols.append(((secs // 86400) + 3) % 7)  # 1970-01-01 was a Thursday; Monday = 0
    short = min(spec.windows) if spec.windows else spec.anchor_window
    for j in range(len(spec.cov_metrics)):
        cs, sc = cov_series[:, j], cov_scale[:, j]
        x = hist.gather(cs, origin)
        base = hist.gather(cs, origin, hist.roll_mean[spec.anchor_window])
        base = np.where(np.isfinite(base), base, x)
        for lag in range(spec.cov_lags):  # leading indicators: recent values relative to their own level
            cols.append((hist.gather(cs, origin - lag) - base) / sc)
        cols.append((x - hist.gather(cs, origin, hist.roll_mean[short])) / sc)
    return np.column_stack(cols).astype(np.float32), anchor
