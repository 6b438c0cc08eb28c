"""Global LightGBM quantile forecaster, the default model: one set of boosters for every series.

Design (direct multi-horizon, horizon as a feature): each training row is (series, origin t, step h) with
causal features at t (lags, rolling mean/std, the values one and two seasons before t+h, calendar of t+h,
and the recent values of the other metrics of the same entity as covariates, HARMONY-style, so a
leading indicator such as business load informs CPU) and target
`(y[t+h] - level_t) / scale_series`. One booster per quantile level shares one binned Dataset; outputs are
sorted per row (monotone rearrangement) so quantiles never cross. Rows are subsampled to
`max_train_rows`, which keeps fit time flat in the number of series. Series whose training data are all
non-negative get non-negative forecasts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from forecasting._features import FeatureSpec, FlatHistory, build_features
from forecasting.base import PanelForecaster, register
from forecasting.data import Key, LongData, calendar_periods, series_scale
from forecasting.types import (
    DEFAULT_QUANTILES,
    InsufficientHistoryError,
    InvalidConfigError,
    mean_from_quantiles,
)

_MIN_TRAIN_ROWS = 30


@register("lightgbm")
class LightGBMQuantileForecaster(PanelForecaster):
    """Global gradient-boosted quantile regression over all series, horizon as a feature."""

    name = "lightgbm"

    def __init__(
        self,
        *,
        max_horizon: int = 24,
        n_lags: int = 12,
        windows: Sequence[int] = (6, 24),
        anchor_window: int = 3,
        season_lengths: Sequence[int] | None = None,
        calendar: bool = True,
        covariates: bool = True,
        max_covariate_metrics: int = 8,
        covariate_lags: int = 4,
        n_estimators: int = 120,
        learning_rate: float = 0.08,
        num_leaves: int = 31,
        min_data_in_leaf: int = 40,
        max_train_rows: int = 120_000,
        num_threads: int = 0,
        seed: int = 0,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        if max_horizon < 1 or n_lags < 1 or anchor_window < 1 or any(w < 2 for w in windows):
            raise InvalidConfigError("max_horizon, n_lags, anchor_window must be >= 1 and windows >= 2")
        if season_lengths is not None and any(p < 2 for p in season_lengths):
            raise InvalidConfigError(f"season_lengths must be >= 2, got {season_lengths}")
        if n_estimators < 1 or max_train_rows < _MIN_TRAIN_ROWS:
            raise InvalidConfigError(f"n_estimators must be >= 1 and max_train_rows >= {_MIN_TRAIN_ROWS}")
        self.max_horizon = max_horizon
        self.n_lags = n_lags
        self.windows = tuple(int(w) for w in windows)
        self.anchor_window = anchor_window
        self.season_lengths = tuple(int(p) for p in season_lengths) if season_lengths is not None else None
        self.calendar = calendar
        self.covariates = covariates
        self.max_covariate_metrics = max_covariate_metrics
        self.covariate_lags = covariate_lags
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.max_train_rows = max_train_rows
        self.num_threads = num_threads
        self.seed = seed

    # ---- configuration ---------------------------------------------------------------------------
    def _configure(self, data: LongData, freq: pd.Timedelta) -> None:
        frame = data.frame
        sizes = frame[frame["metric"].isin(data.targets)].groupby(["series_id", "metric"]).size()
        typical = int(sizes.median())
        if self.season_lengths is not None:
            periods = self.season_lengths
        else:
            periods = tuple(p for p in calendar_periods(freq) if typical >= 2 * p + self.max_horizon)
        cov: tuple[str, ...] = ()
        per_entity = frame.groupby("series_id")["metric"].nunique()
        if self.covariates and (per_entity > 1).any():
            counts = Counter(frame.drop_duplicates(["series_id", "metric"])["metric"])
            cov = tuple(sorted(m for m, _ in counts.most_common(self.max_covariate_metrics)))
        self._spec = FeatureSpec(
            n_lags=self.n_lags,
            windows=self.windows,
            anchor_window=self.anchor_window,
            periods=periods,
            calendar=self.calendar and freq < pd.Timedelta(days=1),
            cov_metrics=cov,
            cov_lags=max(1, self.covariate_lags),
            origin_ns=int(frame["ts"].min().value),
            freq_ns=int(freq.value),
        )
        self._lookback = self._spec.lookback(self.max_horizon)
        self._metric_codes = {m: i for i, m in enumerate(sorted(data.targets))}

    def min_history(self) -> int:
        return 2

    def history_hint(self) -> str:
        return "a level and one change; forecasts improve with a few seasons of history"

    def history_needed(self) -> int:
        return self._lookback

    @property
    def feature_names(self) -> list[str]:
        """Names of the model's input features (after fit)."""
        return self._spec.names()

    # ---- helpers -----------------------------------------------------------------------------------
    def _scale_of(self, key: Key, values: np.ndarray) -> float:
        if key in self._scales:
            return self._scales[key]
        scale = series_scale(values)
        self._scales[key] = scale
        return scale

    def _history(self, starts: Sequence[int] | np.ndarray, arrays: Sequence[np.ndarray]) -> FlatHistory:
        windows = sorted({*self.windows, self.anchor_window})
        return FlatHistory.build(starts, arrays, self._lookback, windows)

    def _covariate_index(self, keys: list[Key], rows_of: Sequence[Key]) -> np.ndarray:
        where = {k: i for i, k in enumerate(keys)}
        out = np.full((len(rows_of), len(self._spec.cov_metrics)), -1, dtype=np.int64)
        for r, key in enumerate(rows_of):
            for j, m in enumerate(self._spec.cov_metrics):
                out[r, j] = where.get((key[0], m), -1)
        return out

    def _design(
        self, keys: list[Key], hist: FlatHistory, s: np.ndarray, origin: np.ndarray, h: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scales = np.array([self._scales[k] for k in keys])
        codes = np.array([self._metric_codes.get(k[1], -1) for k in keys], dtype=float)
        codes[codes < 0] = np.nan
        cov_idx = self._covariate_index(keys, keys)
        cov_scale = np.where(cov_idx >= 0, scales[np.maximum(cov_idx, 0)], np.nan)
        x, anchor = build_features(
            self._spec, hist, s, origin, h, scales[s], codes[s], cov_idx[s], cov_scale[s]
        )
        return x, anchor, scales[s]

    # ---- fit / predict -----------------------------------------------------------------------------
    def _fit(self) -> None:
        panel = self._panel
        keys = list(panel.keys)
        self._scales: dict[Key, float] = {}
        for key, arr in zip(keys, panel.values, strict=True):
            self._scale_of(key, arr)
        self._nonneg = {k: bool(np.nanmin(panel.values[panel.index[k]]) >= 0) for k in self._targets}
        hist = self._history(panel.starts, panel.values)
        s, origin, h = self._sample_rows(keys, hist)
        x, anchor, scale = self._design(keys, hist, s, origin, h)
        y = hist.gather(s, origin + h)
        z = (y - anchor) / scale
        ok = np.isfinite(z)
        if ok.sum() < _MIN_TRAIN_ROWS:
            raise InsufficientHistoryError(
                self.name, _MIN_TRAIN_ROWS, int(ok.sum()),
                hint="training examples (origin, step) across all series; send longer series",
            )  # fmt: skip
        params = {"max_bin": 63, "verbose": -1}
        train = lgb.Dataset(
            x[ok], z[ok], feature_name=self._spec.names(), categorical_feature=["metric"],
            params=params, free_raw_data=False,
        )  # fmt: skip
        self._boosters: list[lgb.Booster] = []
        for tau in self.quantiles:
            booster = lgb.train(self._lgb_params(tau), train, num_boost_round=self.n_estimators)
            self._boosters.append(booster)
        self.n_train_rows_ = int(ok.sum())

    def _lgb_params(self, tau: float) -> dict[str, Any]:
        return {
            "objective": "quantile",
            "alpha": tau,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "max_bin": 63,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
        }

    def _sample_rows(self, keys: list[Key], hist: FlatHistory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(series, origin, step) training rows: all of them if few, else a seeded uniform sample."""
        targets = np.array([i for i, k in enumerate(keys) if k in set(self._targets)], dtype=np.int64)
        first = hist.start[targets] + 1  # an origin needs at least one earlier point
        n_origins = np.maximum(hist.end[targets] - first, 0)  # origins first .. end-1
        total = int(n_origins.sum())
        hmax = self.max_horizon
        self.n_available_rows_ = total * hmax  # before sampling (lets a caller size `max_train_rows`)
        if total == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        if total * hmax <= self.max_train_rows:
            flat = np.repeat(np.arange(total), hmax)
            h = np.tile(np.arange(1, hmax + 1), total)
        else:
            rng = np.random.default_rng(self.seed)
            flat = rng.integers(0, total, size=self.max_train_rows)
            h = rng.integers(1, hmax + 1, size=self.max_train_rows)
        cum = np.concatenate([[0], np.cumsum(n_origins)])
        which = np.searchsorted(cum, flat, side="right") - 1
        s = targets[which]
        origin = first[which] + (flat - cum[which])
        return s, origin, h

    def _predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        if horizon > self.max_horizon:
            raise InvalidConfigError(
                f"horizon {horizon} exceeds max_horizon={self.max_horizon} this model was fitted for; "
                f"refit with LightGBMQuantileForecaster(max_horizon={horizon})"
            )
        panel = self._panel
        keys = list(panel.keys)
        tails, last = panel.tails(keys, self._lookback)
        for key, row in zip(keys, tails, strict=True):
            self._scale_of(key, row)  # series first seen in update() get a scale from their history
        hist = self._history(last - self._lookback + 1, list(tails))
        where = {k: i for i, k in enumerate(keys)}
        t_idx = np.array([where[k] for k in self._targets], dtype=np.int64)
        steps = np.arange(1, horizon + 1)
        s = np.repeat(t_idx, horizon)
        origin = np.repeat(last[t_idx], horizon)
        h = np.tile(steps, len(t_idx))
        x, anchor, scale = self._design(keys, hist, s, origin, h)
        z = np.column_stack([b.predict(x, num_threads=self.num_threads) for b in self._boosters])
        q = np.sort(anchor[:, None] + scale[:, None] * z, axis=1)
        floor = np.array([self._nonneg.get(k, False) for k in self._targets]).repeat(horizon)
        q[floor] = np.maximum(q[floor], 0.0)
        n, k = len(t_idx), len(self.quantiles)
        q3 = q.reshape(n, horizon, k)
        return mean_from_quantiles(q3, self.quantiles), q3
