"""VPA-style decaying-histogram percentile estimator: the Kubernetes Vertical Pod Autoscaler's recommender.

Each series keeps a histogram with exponentially growing bucket widths (5% growth, like VPA) whose sample
weights halve every `half_life`; every quantile is read from the weighted histogram (interpolating inside
the bucket) and is flat over the horizon. It has no notion of time-of-day or trend, which is exactly the
behaviour a predictive model should beat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting.base import PanelForecaster, register
from forecasting.data import Key, LongData
from forecasting.types import DEFAULT_QUANTILES, InvalidConfigError


@register("vpa_histogram")
class VpaHistogramForecaster(PanelForecaster):
    """Decaying exponential-bucket histogram per series; quantiles constant over the horizon."""

    name = "vpa_histogram"

    def __init__(
        self,
        *,
        half_life: str | pd.Timedelta = "24h",
        bucket_growth: float = 0.05,
        first_bucket_fraction: float = 0.001,
        headroom: float = 10.0,
        margin: float = 0.0,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        if bucket_growth <= 0 or first_bucket_fraction <= 0 or headroom <= 1:
            raise InvalidConfigError("bucket_growth and first_bucket_fraction must be > 0 and headroom > 1")
        if pd.Timedelta(half_life) <= pd.Timedelta(0):
            raise InvalidConfigError(f"half_life must be positive, got {half_life!r}")
        self.half_life = pd.Timedelta(half_life)
        self.bucket_growth = bucket_growth
        self.first_bucket_fraction = first_bucket_fraction
        self.headroom = headroom
        self.margin = margin

    def history_needed(self) -> int:
        return 1  # the histogram is the state; only the last position is kept for the cutoff

    def _fit(self) -> None:
        g = 1.0 + self.bucket_growth
        self._n_buckets = math.ceil(math.log(1.0 + self.headroom * (g - 1.0) / self.first_bucket_fraction, g))
        self._hl_steps = self.half_life / self._freq
        self._rows: dict[Key, int] = {}
        self._lower = np.empty(0)
        self._width0 = np.empty(0)
        self._weights = np.empty((0, self._n_buckets))
        self._ref = np.empty(0, dtype=np.int64)
        self._seen = np.empty((0, 2))  # min and max ever observed: quantiles never leave that range
        for key in self._targets:
            i = self._panel.index[key]
            arr = self._panel.values[i]
            pos = self._panel.starts[i] + np.flatnonzero(np.isfinite(arr))
            self._add_samples(key, pos, arr[np.isfinite(arr)])

    def _update_data(self, data: LongData, raw: pd.DataFrame) -> None:
        super()._update_data(data, raw)
        frame = data.frame[data.frame["metric"].isin(self._target_names)]
        if frame.empty:
            return
        pos = self._panel.positions(frame["ts"])
        for (sid, met), idx in frame.groupby(["series_id", "metric"], sort=False).indices.items():
            self._add_samples((str(sid), str(met)), pos[idx], frame["value"].to_numpy()[idx])

    def _new_row(self, key: Key, values: np.ndarray, first_pos: int) -> int:
        lo, hi = float(values.min()), float(values.max())
        lower = 0.0 if lo >= 0 else lo - (hi - lo)
        scale = max(abs(hi), abs(lo), hi - lo, 1e-9)
        self._rows[key] = len(self._lower)
        self._lower = np.append(self._lower, lower)
        self._width0 = np.append(
            self._width0, self.first_bucket_fraction * (scale - lower if lower < 0 else scale)
        )
        self._weights = np.vstack([self._weights, np.zeros((1, self._n_buckets))])
        self._ref = np.append(self._ref, first_pos)
        self._seen = np.vstack([self._seen, [[lo, hi]]])
        return self._rows[key]

    def _bucket(self, r: int, values: np.ndarray) -> np.ndarray:
        g = 1.0 + self.bucket_growth
        x = np.maximum(values - self._lower[r], 0.0) * (g - 1.0) / self._width0[r]
        k = np.floor(np.log1p(x) / math.log(g)).astype(np.int64)
        return np.clip(k, 0, self._n_buckets - 1)

    def _add_samples(self, key: Key, pos: np.ndarray, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        r = self._rows.get(key)
        if r is None:
            r = self._new_row(key, values, int(pos.min()))
        new_ref = max(int(self._ref[r]), int(pos.max()))
        decay = np.exp2(-(new_ref - self._ref[r]) / self._hl_steps)
        sample_w = np.exp2(-(new_ref - pos) / self._hl_steps)
        added = np.bincount(self._bucket(r, values), weights=sample_w, minlength=self._n_buckets)
        self._weights[r] = self._weights[r] * decay + added
        self._ref[r] = new_ref
        self._seen[r] = [min(self._seen[r, 0], values.min()), max(self._seen[r, 1], values.max())]

    def _edges(self, rows: np.ndarray) -> np.ndarray:
        g = 1.0 + self.bucket_growth
        k = np.arange(self._n_buckets + 1)
        rel = (g**k - 1.0) / (g - 1.0)
        return self._lower[rows, None] + self._width0[rows, None] * rel[None, :]

    def _predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.array([self._rows[k] for k in self._targets])
        w = self._weights[rows]
        edges = self._edges(rows)
        cum = np.cumsum(w, axis=1)
        total = cum[:, -1:]
        tau = np.asarray(self.quantiles)
        target = tau[None, :] * total  # (n, K)
        k = np.empty(target.shape, dtype=np.int64)
        for j in range(len(tau)):
            k[:, j] = np.minimum((cum < target[:, j : j + 1]).sum(axis=1), self._n_buckets - 1)
        r_idx = np.arange(len(rows))[:, None]
        below = np.where(k > 0, cum[r_idx, np.maximum(k - 1, 0)], 0.0)
        frac = np.clip((target - below) / np.maximum(w[r_idx, k], 1e-300), 0.0, 1.0)
        q = edges[r_idx, k] + frac * (edges[r_idx, k + 1] - edges[r_idx, k])
        centers = (edges[:, 1:] + edges[:, :-1]) / 2.0
        mean = (w * centers).sum(axis=1) / total[:, 0]
        lo, hi = self._seen[rows, :1], self._seen[rows, 1:]
        q = np.clip(q, lo, hi)
        mean = np.clip(mean, lo[:, 0], hi[:, 0])
        q = q + self.margin * np.abs(q)
        mean = mean + self.margin * np.abs(mean)
        return np.repeat(mean[:, None], horizon, axis=1), np.repeat(q[:, None, :], horizon, axis=1)
