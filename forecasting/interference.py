"""Interference forecaster: quantiles of a workload's performance-degradation ratio on its node.

Target (CloudFormer's definition): the ratio of observed to healthy performance, reported as the
degradation `d = 1 - observed / baseline`, so a scaling policy can use `capacity * (1 - d)` directly
(`effective_capacity`). Performance is oriented so that higher is better: throughput metrics are used as
they are, latency metrics (`lower_is_better`) are inverted (`1 / latency`), so for a latency
`d = 1 - baseline_latency / latency`.

Healthy baseline: per (entity, metric), the `baseline_quantile` (default 0.95) of that oriented
performance over the training data, i.e. what the workload achieves on this node when it is not being
disturbed. A high percentile rather than the maximum keeps one lucky run from defining "healthy"; the
price is that about 5% of observations sit above the baseline and have a small negative degradation,
which is kept (clipping would bias the forecast). The baseline is learned at fit time and travels with
the model; a series first seen in `update()` gets its baseline from its first batch.

Features: the target's own recent degradation (lags, rolling statistics), the degradation of the other
metrics measured on the same entity (co-located probes, used as covariates by the LightGBM base model),
and optionally the leave-one-out mean degradation of the other entities of the same group
(`groups`: entity -> host/rack/region), added as covariate metrics named `neighbours:<metric>`; these
need the entities' timestamps on one shared grid (the data loaders bin them). Which of
these are real telemetry and which are proxies depends on the data (see `forecasting.interference_data`
for the Azure VM noise data). The quantile model is any registered forecaster (default
`lightgbm_conformal`, whose split-conformal step keeps the intervals honest), or one of the interference
members of `forecasting.interference_members`: `rolling_median`, or `choice` (per series, persistence,
rolling median or LightGBM, whichever has the lowest validation CRPS; see docs/interference.md).

Not registered in the model registry: its output (degradation) is a different quantity from its input
(raw performance), so it is not a drop-in forecaster of the input series for the generic tools.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecasting.base import Forecaster, build_base
from forecasting.data import Key, LongData, canonical_columns, normalize_long_frame
from forecasting.interference_members import LOCAL_MODELS, member_forecaster
from forecasting.metrics import interpolate_quantiles
from forecasting.types import (
    DEFAULT_QUANTILES,
    METRIC,
    SERIES_ID,
    TS,
    VALUE,
    InvalidConfigError,
    InvalidSeriesError,
    make_forecast_frame,
    quantile_columns,
    quantile_levels_of,
)

NEIGHBOUR_PREFIX = "neighbours:"
"""Metric-name prefix of the neighbour (same-group, leave-one-out mean) covariates."""


def is_lower_better(metric: str, lower_is_better: Sequence[str] | None) -> bool:
    """Whether `metric` is a latency-like metric (explicit list, or by default any name with 'latency')."""
    if lower_is_better is None:
        return "latency" in metric.lower()
    return metric in lower_is_better


def oriented(values: np.ndarray, lower_better: bool) -> np.ndarray:
    """Performance with higher = better: latencies become rates (1/latency); non-positive latencies -> NaN."""
    if not lower_better:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, 1.0 / values, np.nan)


class InterferenceForecaster(Forecaster):
    """Forecast degradation ratios from raw performance telemetry; baselines fitted with the model."""

    name = "interference"
    _recent: pd.DataFrame

    def __init__(
        self,
        base: str | Forecaster = "lightgbm_conformal",
        *,
        base_config: Mapping[str, Any] | None = None,
        baseline_quantile: float = 0.95,
        lower_is_better: Sequence[str] | None = None,
        groups: Mapping[str, str] | None = None,
        neighbour_window: int = 64,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        if not 0.5 <= baseline_quantile <= 1.0:
            raise InvalidConfigError(f"baseline_quantile must be in [0.5, 1], got {baseline_quantile}")
        if neighbour_window < 1:
            raise InvalidConfigError(f"neighbour_window must be >= 1, got {neighbour_window}")
        if isinstance(base, Forecaster) and base.is_fitted:
            raise InvalidConfigError("pass an unfitted base forecaster (it is fitted on degradation ratios)")
        self.base = base
        self.base_config = dict(base_config or {})
        self.baseline_quantile = baseline_quantile
        self.lower_is_better = tuple(lower_is_better) if lower_is_better is not None else None
        self.groups = {str(k): str(v) for k, v in groups.items()} if groups is not None else None
        self.neighbour_window = neighbour_window

    # ---- public helpers ------------------------------------------------------------------------------
    @property
    def baselines(self) -> dict[Key, float]:
        """Healthy baseline of each (entity, metric), in oriented (higher is better) units."""
        self._require_fitted()
        return dict(self._baselines)

    @property
    def model(self) -> Forecaster:
        """The fitted quantile model of the degradation ratios."""
        self._require_fitted()
        return self._model

    def degradation(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Long frame (series_id, metric, ts, value) of degradation ratios of `frame`, fitted baselines."""
        self._require_fitted()
        data = normalize_long_frame(frame).frame
        perf = data[~data[METRIC].isin(self._covariate_columns)]
        return self._to_degradation(perf, learn=False)

    # ---- transforms ----------------------------------------------------------------------------------
    def _learn_baselines(self, perf: pd.DataFrame) -> None:
        for (sid, met), vals in perf.groupby([SERIES_ID, METRIC], sort=False)[VALUE]:
            key = (str(sid), str(met))
            if key in self._baselines:
                continue
            o = oriented(vals.to_numpy(dtype=float), is_lower_better(key[1], self.lower_is_better))
            o = o[np.isfinite(o)]
            if len(o) == 0:
                continue
            base = float(np.quantile(o, self.baseline_quantile))
            if base <= 0:
                raise InvalidSeriesError(
                    f"series {key[0]!r} metric {key[1]!r}: healthy baseline is {base:g} <= 0; degradation "
                    "ratios need positive performance (throughput, or a latency listed in lower_is_better)"
                )
            self._baselines[key] = base

    def _to_degradation(self, perf: pd.DataFrame, learn: bool) -> pd.DataFrame:
        if learn:
            self._learn_baselines(perf)
        keys = list(zip(perf[SERIES_ID], perf[METRIC], strict=True))
        base = np.array([self._baselines.get(k, np.nan) for k in keys], dtype=float)
        lower = np.array([is_lower_better(m, self.lower_is_better) for m in perf[METRIC]], dtype=bool)
        vals = perf[VALUE].to_numpy(dtype=float)
        o = np.where(lower, oriented(vals, True), vals)
        out = perf[[SERIES_ID, METRIC, TS]].assign(**{VALUE: 1.0 - o / base})
        return out.loc[np.isfinite(out[VALUE].to_numpy())].reset_index(drop=True)

    def _neighbour_rows(self, deg: pd.DataFrame) -> pd.DataFrame:
        """Leave-one-out group mean of each metric at each timestamp in `deg`, for every group member.

        Uses the retained recent degradation of other members, so a batch that carries only some members
        still sees the others' values at the same timestamps.
        """
        if self.groups is None or deg.empty:
            return deg.iloc[:0]
        recent = pd.concat([self._recent, deg], ignore_index=True)
        recent = recent.drop_duplicates([SERIES_ID, METRIC, TS], keep="last")
        times = recent[TS].drop_duplicates().sort_values()
        self._recent = recent.loc[recent[TS] >= times.iloc[-min(len(times), self.neighbour_window)]]
        now = recent.loc[recent[TS].isin(deg[TS].unique())]
        now = now.assign(group=now[SERIES_ID].map(self.groups)).dropna(subset=["group"])
        if now.empty:
            return deg.iloc[:0]
        agg = now.groupby(["group", METRIC, TS], sort=False)[VALUE].agg(["sum", "count"]).reset_index()
        members = pd.DataFrame({SERIES_ID: list(self.groups), "group": list(self.groups.values())})
        rows = agg.merge(members, on="group").merge(
            now[[SERIES_ID, METRIC, TS, VALUE]], on=[SERIES_ID, METRIC, TS], how="left"
        )
        own = rows[VALUE].to_numpy(dtype=float)
        has_own = np.isfinite(own)
        n_other = rows["count"].to_numpy() - has_own
        with np.errstate(invalid="ignore", divide="ignore"):
            loo = (rows["sum"].to_numpy() - np.where(has_own, own, 0.0)) / n_other
        out = pd.DataFrame(
            {
                SERIES_ID: rows[SERIES_ID].to_numpy(),
                METRIC: NEIGHBOUR_PREFIX + rows[METRIC].astype(str),
                TS: rows[TS].to_numpy(),
                VALUE: loo,
            }
        )
        return out.loc[n_other > 0].reset_index(drop=True)

    def _transform(self, data: LongData, learn: bool) -> pd.DataFrame:
        frame = data.frame
        cov = frame[METRIC].isin(self._covariate_columns)
        deg = self._to_degradation(frame.loc[~cov], learn=learn)
        parts = [deg, self._neighbour_rows(deg), frame.loc[cov, [SERIES_ID, METRIC, TS, VALUE]]]
        return pd.concat([p for p in parts if not p.empty], ignore_index=True)

    # ---- contract --------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any] | None:
        """The quantile model's own account of itself (`choice`: members, per-series choice, scores)."""
        self._require_fitted()
        describe = getattr(self._model, "describe", None)
        return describe() if callable(describe) else None

    def _make_base(self, targets: Sequence[str]) -> Forecaster:
        if isinstance(self.base, str) and self.base in LOCAL_MODELS:
            return member_forecaster(self.base, self.base_config, self.quantiles, targets, self.freq)
        return build_base(
            self.base,
            self.base_config,
            self.quantiles,
            target_metrics=targets,
            freq=self.freq,
            force_targets=True,
        )

    def _fit_data(self, data: LongData, raw: pd.DataFrame) -> None:
        cols = canonical_columns(raw).columns
        self._covariate_columns = frozenset(str(c) for c in cols if c not in (SERIES_ID, TS, VALUE, METRIC))
        self._baselines: dict[Key, float] = {}
        self._recent = data.frame.iloc[:0][[SERIES_ID, METRIC, TS, VALUE]]
        frame = self._transform(data, learn=True)
        targets = sorted(data.targets - self._covariate_columns)
        if not targets:
            raise InvalidSeriesError("no performance metric to forecast: only covariate columns were given")
        self._model = self._make_base(targets).fit(frame)

    def _update_data(self, data: LongData, raw: pd.DataFrame) -> None:
        frame = self._transform(data, learn=True)
        if not frame.empty:
            self._model.update(frame)

    def _predict_frame(self, horizon: int) -> pd.DataFrame:
        return self._model.predict(horizon)


def effective_capacity(forecast: pd.DataFrame, capacity: float | np.ndarray) -> pd.DataFrame:
    """Quantiles of per-replica capacity `capacity * (1 - d)` from a degradation ForecastFrame.

    Capacity falls as degradation rises, so its tau-quantile is `capacity * (1 - q_{1-tau}(d))`; this
    needs symmetric quantile levels (the defaults are). Capacity is floored at zero.
    """
    levels = quantile_levels_of(forecast)
    if not levels:
        raise InvalidSeriesError("forecast has no quantile columns")
    cap = np.broadcast_to(np.asarray(capacity, dtype=float), (len(forecast),))
    q = forecast[quantile_columns(levels)].to_numpy(dtype=float)
    mirrored = interpolate_quantiles(q, levels, [1.0 - t for t in levels])
    out_q = np.maximum(cap[:, None] * (1.0 - mirrored), 0.0)
    mean = np.maximum(cap * (1.0 - forecast["mean"].to_numpy(dtype=float)), 0.0)
    return make_forecast_frame(
        series=forecast["series"].to_numpy(), metric=forecast["metric"].to_numpy(),
        cutoff=forecast["cutoff"], timestamp=forecast["timestamp"], horizon=forecast["horizon"].to_numpy(),
        mean=mean, quantiles=out_q, levels=levels,
    )  # fmt: skip
