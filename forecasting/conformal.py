"""Conformal calibration for any forecaster, so that nominal intervals cover what they claim on new data.

`ConformalForecaster` (split conformal, CQR-style): fit the base model on all but the last
`calibration_fraction` of each entity's history, roll through that calibration window with
update()+predict() (no refit), score each central interval (q_lo, q_hi) by `max(q_lo - y, y - q_hi) / unit`
and widen (or narrow) it by the finite-sample conformal quantile of those scores, per horizon step. The
unit is the base interval's own width (default: corrections scale with the model's local uncertainty, so
spiky and calm series pool well) or the series' standard deviation. With `refit=True` (the default) the
base model is refitted on all the data after calibration, so the wrapper's median is exactly the median
of the base model fitted on the same data (twice the fit time; `refit=False` keeps the model fitted on
the earlier part).

The wrapper never moves the centre: corrections widen or narrow the intervals around the base median,
lower quantiles never pass it and upper ones never fall below it (`forecasting.calibration.keep_centre`,
no re-sort). Online (ACI) corrections are capped at `max_growth` times the largest split-conformal
correction (and at least one unit), so a level shift or an outlier burst after calibration cannot blow the
tails up, and a series whose training values are all >= 0 gets no negative quantile (`nonnegative`,
inferred unless given).

`AdaptiveConformalForecaster` adds adaptive conformal inference (Gibbs & Candès, 2021): every update()
checks the intervals it issued against what happened, moves each series' working miscoverage level by
`gamma * (alpha - miss)` and keeps adding fresh scores, so coverage keeps tracking its target under drift.
The working level is bounded to [alpha / alpha_ratio, alpha * alpha_ratio] and fresh scores are capped like
the corrections, so a level shift or an outlier burst can widen the intervals only to a finite bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecasting.base import Forecaster, build_base, register
from forecasting.calibration import centre_of, clip_nonnegative, keep_centre
from forecasting.data import (
    LongData,
    canonical_columns,
    normalize_long_frame,
    series_scale,
    split_by_time,
    to_utc,
)
from forecasting.types import (
    DEFAULT_QUANTILES,
    InsufficientHistoryError,
    InvalidConfigError,
    make_forecast_frame,
    quantile_columns,
)

Key = tuple[str, str]


def central_pairs(levels: Sequence[float]) -> list[tuple[int, int]]:
    """Index pairs (lo, hi) of symmetric levels (tau, 1 - tau) with tau < 0.5."""
    out = []
    for i, lo in enumerate(levels):
        for j in range(len(levels) - 1, i, -1):
            if lo < 0.5 and math.isclose(lo + levels[j], 1.0, abs_tol=1e-9):
                out.append((i, j))
    return out


class ConformalForecaster(Forecaster):
    """Split-conformal wrapper: base model fitted on early data, intervals corrected on a later window."""

    name = "conformal"

    def __init__(
        self,
        base: str | Forecaster = "lightgbm",
        *,
        base_config: Mapping[str, Any] | None = None,
        horizon: int = 24,
        calibration_fraction: float = 0.2,
        calibration_steps: int = 24,
        score_scale: str = "interval",
        refit: bool = True,
        max_growth: float = 3.0,
        nonnegative: bool | None = None,
        quantiles: Sequence[float] | None = None,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        if quantiles is None:
            quantiles = base.quantiles if isinstance(base, Forecaster) else DEFAULT_QUANTILES
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        if not 0.0 < calibration_fraction < 1.0:
            raise InvalidConfigError(f"calibration_fraction must be in (0, 1), got {calibration_fraction}")
        if horizon < 1 or calibration_steps < 1:
            raise InvalidConfigError("horizon and calibration_steps must be >= 1")
        if isinstance(base, Forecaster) and base.is_fitted:
            raise InvalidConfigError("pass an unfitted base forecaster (it is fitted on the training part)")
        self.base = base
        self.base_config = dict(base_config or {})
        self.horizon = horizon
        self.calibration_fraction = calibration_fraction
        self.calibration_steps = calibration_steps
        if score_scale not in ("interval", "series"):
            raise InvalidConfigError(f"score_scale must be 'interval' or 'series', got {score_scale!r}")
        self.score_scale = score_scale
        self.refit = refit
        if not max_growth >= 1.0:
            raise InvalidConfigError(f"max_growth must be >= 1, got {max_growth}")
        self.max_growth = max_growth
        self.nonnegative = nonnegative
        self._pairs = central_pairs(self.quantiles)
        if not self._pairs:
            raise InvalidConfigError(
                f"quantile levels {self.quantiles} contain no symmetric pair to calibrate"
            )

    @property
    def model(self) -> Forecaster:
        """The fitted base model."""
        self._require_fitted()
        return self._model

    def _make_base(self) -> Forecaster:
        model = build_base(
            self.base, self.base_config, self.quantiles, target_metrics=self.target_metrics, freq=self.freq
        )
        if getattr(model, "max_horizon", self.horizon) < self.horizon:
            if "max_horizon" in self.base_config or isinstance(self.base, Forecaster):
                raise InvalidConfigError(f"base max_horizon is below the calibrated horizon {self.horizon}")
            model.max_horizon = self.horizon  # type: ignore[attr-defined]
        return model

    # ---- fit -----------------------------------------------------------------------------------------
    def _fit_data(self, data: LongData, raw: pd.DataFrame) -> None:
        train, cal = split_by_time(raw, self.calibration_fraction)
        model = self._make_base()
        model.fit(train)
        self._target_names = data.targets
        self._scales: dict[Key, float] = {}
        self._nonneg: dict[Key, bool] = {}
        self._remember_scales(normalize_long_frame(train, self.target_metrics))
        scored = self._calibrate(model, cal)
        if scored.empty:
            raise InsufficientHistoryError(
                self.name, needed=self.horizon + 1, got=0, series=None,
                hint="the calibration window produced no scored forecasts; send longer history or raise "
                "calibration_fraction",
            )  # fmt: skip
        if self.refit:
            model = self._make_base().fit(raw)
        self._model = model
        self._scores = self._score_table(scored)
        self._corrections = self._split_corrections(self._scores)

    def _remember_scales(self, data: LongData) -> None:
        frame = data.frame[data.frame["metric"].isin(data.targets)]
        for (sid, met), vals in frame.groupby(["series_id", "metric"], sort=False)["value"]:
            key = (str(sid), str(met))
            arr = vals.to_numpy()
            self._scales.setdefault(key, series_scale(arr))
            if self.nonnegative is None:  # one negative observation ever seen makes the unit signed
                self._nonneg[key] = self._nonneg.get(key, True) and bool(np.nanmin(arr) >= 0.0)

    def _calibrate(self, model: Forecaster, cal_raw: pd.DataFrame) -> pd.DataFrame:
        """Roll through the calibration window; return forecasts joined with what happened."""
        cal_raw = canonical_columns(cal_raw)
        ts = to_utc(cal_raw["ts"])
        cutoffs = np.sort(ts.unique())
        if len(cutoffs) == 0:
            return pd.DataFrame()
        chosen = np.unique(
            np.linspace(0, len(cutoffs) - 1, min(self.calibration_steps, len(cutoffs))).round()
        )
        prev: pd.Timestamp | None = None
        frames = []
        for c in cutoffs[chosen.astype(int)]:
            mask = (ts <= c) if prev is None else (ts > prev) & (ts <= c)
            model.update(cal_raw.loc[mask.to_numpy()])
            f = model.predict(self.horizon)
            frames.append(f.loc[f["cutoff"] == c])
            prev = c
        rest = (ts > prev).to_numpy()
        if rest.any():
            model.update(cal_raw.loc[rest])
        actual = normalize_long_frame(cal_raw, self.target_metrics).frame
        actual = actual.rename(columns={"series_id": "series", "ts": "timestamp", "value": "y"})
        return pd.concat(frames, ignore_index=True).merge(actual, on=["series", "metric", "timestamp"])

    def _row_scales(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, pairs) unit of each score: the base interval's width, or the series' spread."""
        keys = zip(frame["series"].astype(str), frame["metric"].astype(str), strict=True)
        series = np.array([self._scales.get(k, 1.0) for k in keys], dtype=float)[:, None]
        if self.score_scale == "series":
            return np.repeat(series, len(self._pairs), axis=1)
        q = frame[quantile_columns(self.quantiles)].to_numpy(dtype=float)
        width = q[:, [j for _, j in self._pairs]] - q[:, [i for i, _ in self._pairs]]
        return np.maximum(width, 1e-3 * series)

    def _raw_scores(self, frame: pd.DataFrame, y: np.ndarray) -> np.ndarray:
        """(rows, pairs) normalised CQR scores of the base quantiles in `frame`."""
        q = frame[quantile_columns(self.quantiles)].to_numpy(dtype=float)
        lo = q[:, [i for i, _ in self._pairs]]
        hi = q[:, [j for _, j in self._pairs]]
        return np.maximum(lo - y[:, None], y[:, None] - hi) / self._row_scales(frame)

    def _score_table(self, scored: pd.DataFrame) -> dict[int, np.ndarray]:
        scores = self._raw_scores(scored, scored["y"].to_numpy(dtype=float))
        h = scored["horizon"].to_numpy()
        table = {int(step): scores[h == step] for step in np.unique(h)}
        filled: dict[int, np.ndarray] = {}
        for step in range(1, self.horizon + 1):  # horizons with no score borrow the nearest shorter one
            below = [k for k in table if k <= step]
            filled[step] = table[max(below)] if below else table[min(table)]
        return filled

    def _nominal_alpha(self) -> np.ndarray:
        return np.array([1.0 - (self.quantiles[j] - self.quantiles[i]) for i, j in self._pairs])

    def _split_corrections(self, scores: dict[int, np.ndarray]) -> np.ndarray:
        alpha = self._nominal_alpha()
        out = np.zeros((self.horizon, len(self._pairs)))
        for step, sc in scores.items():
            n = len(sc)
            for p, a in enumerate(alpha):
                level = min(1.0, math.ceil((n + 1) * (1.0 - a)) / n)
                out[step - 1, p] = np.quantile(sc[:, p], level, method="higher")
        # the bound on any later (adaptive) correction, in score units: finite whatever arrives later
        self.correction_cap = self.max_growth * max(1.0, float(np.abs(out).max()))
        return out

    # ---- update / predict -------------------------------------------------------------------------------
    def _update_data(self, data: LongData, raw: pd.DataFrame) -> None:
        self._model.update(raw)
        self._remember_scales(data)

    def _is_nonneg(self, frame: pd.DataFrame) -> np.ndarray:
        if self.nonnegative is not None:
            return np.full(len(frame), bool(self.nonnegative))
        keys = zip(frame["series"].astype(str), frame["metric"].astype(str), strict=True)
        return np.array([self._nonneg.get(k, False) for k in keys], dtype=bool)

    def _apply(self, base: pd.DataFrame, corr: np.ndarray) -> pd.DataFrame:
        """Shift each central pair outward by corr (rows, pairs) in score units, around a fixed median."""
        qcols = quantile_columns(self.quantiles)
        q = base[qcols].to_numpy(dtype=float).copy()
        centre = centre_of(q, self.quantiles)
        unit = self._row_scales(base)
        corr = np.clip(corr, -self.correction_cap, self.correction_cap)
        shift = corr * unit
        for p, (i, j) in enumerate(self._pairs):
            q[:, i] -= shift[:, p]
            q[:, j] += shift[:, p]
        q = keep_centre(q, self.quantiles, centre)  # narrowing stops at the median; nothing crosses
        q, mean = clip_nonnegative(q, base["mean"].to_numpy(dtype=float), self._is_nonneg(base))
        return make_forecast_frame(
            series=base["series"].to_numpy(), metric=base["metric"].to_numpy(), cutoff=base["cutoff"],
            timestamp=base["timestamp"], horizon=base["horizon"].to_numpy(),
            mean=mean, quantiles=q, levels=self.quantiles, sort_quantiles=False,
        )  # fmt: skip

    def _predict_frame(self, horizon: int) -> pd.DataFrame:
        base = self._model.predict(horizon)
        steps = np.minimum(base["horizon"].to_numpy(), self.horizon) - 1
        return self._apply(base, self._corrections[steps])


class AdaptiveConformalForecaster(ConformalForecaster):
    """Split conformal plus ACI: per-series miscoverage levels adapt online to the misses seen in update."""

    name = "aci"

    def __init__(
        self,
        base: str | Forecaster = "lightgbm",
        *,
        gamma: float = 0.005,
        score_window: int = 5000,
        alpha_ratio: float = 20.0,
        **kw: Any,
    ) -> None:
        super().__init__(base, **kw)
        if not 0.0 < gamma < 1.0 or score_window < 10:
            raise InvalidConfigError("gamma must be in (0, 1) and score_window >= 10")
        if not alpha_ratio >= 1.0:
            raise InvalidConfigError(f"alpha_ratio must be >= 1, got {alpha_ratio}")
        self.gamma = gamma
        self.score_window = score_window
        self.alpha_ratio = alpha_ratio

    def _fit_data(self, data: LongData, raw: pd.DataFrame) -> None:
        super()._fit_data(data, raw)
        self._alpha_row: dict[Key, int] = {}
        self._alpha_mat = np.empty((0, len(self._pairs)))
        self._pending = pd.DataFrame()
        self._generation = 0

    def _alpha_rows(self, keys: Sequence[Key]) -> np.ndarray:
        """Row of each key in the working-alpha matrix (new keys start at the nominal level)."""
        new = [k for k in dict.fromkeys(keys) if k not in self._alpha_row]
        if new:
            for k in new:
                self._alpha_row[k] = len(self._alpha_row)
            fresh = np.tile(self._nominal_alpha(), (len(new), 1))
            self._alpha_mat = np.vstack([self._alpha_mat, fresh])
        return np.array([self._alpha_row[k] for k in keys], dtype=np.int64)

    def alpha(self, series: str, metric: str = "value") -> np.ndarray:
        """Current working miscoverage level of each central pair for one series."""
        row = self._alpha_row.get((series, metric))
        return self._nominal_alpha() if row is None else self._alpha_mat[row].copy()

    def _predict_frame(self, horizon: int) -> pd.DataFrame:
        base = self._model.predict(horizon)
        steps = np.minimum(base["horizon"].to_numpy(), self.horizon)
        keys = list(zip(base["series"].astype(str), base["metric"].astype(str), strict=True))
        rows_alpha = self._alpha_rows(keys)
        alphas = self._alpha_mat[rows_alpha]
        corr = np.zeros((len(base), len(self._pairs)))
        for step in np.unique(steps):
            rows = steps == step
            sc = self._scores[int(step)]
            n = len(sc)
            level = np.clip(np.ceil((n + 1) * (1.0 - alphas[rows])) / n, 0.0, 1.0)
            for p in range(len(self._pairs)):
                corr[rows, p] = np.quantile(sc[:, p], level[:, p], method="higher")
        out = self._apply(base, corr)
        pending = base[["series", "metric", "timestamp", "horizon", *quantile_columns(self.quantiles)]].copy()
        adj = out[quantile_columns(self.quantiles)].to_numpy()
        for p, (i, j) in enumerate(self._pairs):
            pending[f"_lo{p}"], pending[f"_hi{p}"] = adj[:, i], adj[:, j]
        pending["_row"] = rows_alpha
        self._generation += 1
        pending["_gen"] = self._generation
        live = self._pending
        if not live.empty:
            live = live.loc[live["_gen"].to_numpy() > self._generation - self.horizon]
        self._pending = pd.concat([live, pending], ignore_index=True) if not live.empty else pending
        return out

    def _update_data(self, data: LongData, raw: pd.DataFrame) -> None:
        super()._update_data(data, raw)
        if self._pending.empty:
            return
        frame = data.frame
        seen = frame.loc[frame["metric"].isin(self._target_names), ["series_id", "metric", "ts", "value"]]
        seen = seen.rename(columns={"series_id": "series", "ts": "timestamp", "value": "y"})
        hit = self._pending.merge(seen, on=["series", "metric", "timestamp"], how="left")
        matched = hit["y"].notna().to_numpy()
        if matched.any():
            self._learn(hit.loc[matched])
            self._pending = hit.loc[~matched, self._pending.columns].reset_index(drop=True)

    def _learn(self, matched: pd.DataFrame) -> None:
        y = matched["y"].to_numpy(dtype=float)
        lo = matched[[f"_lo{p}" for p in range(len(self._pairs))]].to_numpy()
        hi = matched[[f"_hi{p}" for p in range(len(self._pairs))]].to_numpy()
        miss = ((y[:, None] < lo) | (y[:, None] > hi)).astype(float)
        delta = self.gamma * (self._nominal_alpha()[None, :] - miss)
        np.add.at(self._alpha_mat, matched["_row"].to_numpy(), delta)
        nominal = self._nominal_alpha()[None, :]
        lo, hi = nominal / self.alpha_ratio, np.minimum(nominal * self.alpha_ratio, 1.0)
        np.clip(self._alpha_mat, lo, hi, out=self._alpha_mat)
        scores = np.clip(self._raw_scores(matched, y), -self.correction_cap, self.correction_cap)
        h = np.minimum(matched["horizon"].to_numpy(), self.horizon)
        for step_h in np.unique(h):
            fresh = np.vstack([self._scores[int(step_h)], scores[h == step_h]])
            self._scores[int(step_h)] = fresh[-self.score_window :]


@register("lightgbm_conformal")
def lightgbm_conformal(**config: Any) -> ConformalForecaster:
    """The default model: global LightGBM quantiles with split-conformal interval correction."""
    return ConformalForecaster("lightgbm", **config)


@register("lightgbm_aci")
def lightgbm_aci(**config: Any) -> AdaptiveConformalForecaster:
    """Global LightGBM quantiles with adaptive conformal correction tracked online."""
    return AdaptiveConformalForecaster("lightgbm", **config)
