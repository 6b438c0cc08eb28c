"""`auto`, the default forecaster: per series, an ensemble chosen on evidence from its own recent past.

Fit: the last part of the training window is a rolling-origin validation window (`n_windows` cutoffs
`stride` steps apart, the last one `horizon` steps before the end, so every validation forecast is scored
on all its steps). Each candidate (seasonal naive, naive, seasonal_window, statsforecast AutoETS and
AutoTheta, global LightGBM on per-series-scaled changes, with the entity's other indicators as
covariates and without them) is fitted once on the data before the first
cutoff, then updated (no refit) through the cutoffs, forecasting `horizon` steps at each. Greedy ensemble
selection (`forecasting.ensemble`) then picks each series' weights on its validation CRPS, and a pooled
selection (CRPS in units of each series' spread) picks one set for all. A series' own weights rest on a
few windows and can overfit them, the pooled ones miss what is particular to it: each series gets
`share * own + (1 - share) * pooled`, with the share chosen out of sample (`ensemble.series_share`:
weights selected on the earlier half of the cutoffs, scored on the later half; `series_weight_share`
overrides). The ensemble's mean is a point forecast of its own: its member weights are selected the same
way on validation squared error (a member with wide intervals may still have the best mean, as AutoETS
often does). Then the ensemble's validation residuals calibrate its intervals around its median
(`forecasting.calibration.SideScaler`: the median is never moved, factors are bounded), applied only as
far as a correction learnt on the earlier cutoffs improved the later ones
(`calibration.calibration_strength`: widths learnt on a calm window would narrow intervals a busy one
needs; the `calibration_strength` parameter overrides). Last, every member that carries weight is
refitted on the whole window, the validation part included (it is the most recent data: on a short
series, such as an hour of 10-second bins, a LightGBM member fitted without it had a 75 % larger MAE
than one refitted), cheapest first and only while the budget allows; a member the budget cannot refit
keeps its validated state, updated with the rest of the window, and `describe()` says which.

After the fit the weights follow the data (`online_weights`, on by default): every forecast `auto` hands
out is remembered per member and scored when `update` brings its targets, the scored rows join the evidence,
which keeps each series' newest `online_evidence` x as many rows as validation held (2: the validation
window is pushed out only once as much new evidence has arrived; chosen on the development datasets, 1
and 4 measured within 2 %), and the weights are selected again on it, with the fit's share of
per-series weights. A series that changes regime after the
fit (a level shift, a new burst pattern) moves its weight to the members that forecast the new regime
without a refit; `forecasting.evidence` holds the bookkeeping. The calibration stays as fitted.

The first quarter of the horizon (`short_horizon_steps`) has weights of its own, chosen the same way on
those steps' rows alone (with the all-step share of per-series weights): members good one step ahead
(naive, AutoETS) and those good far ahead (LightGBM) are not averaged into one compromise for every step.

A time budget (CPU seconds of this process, so a busy machine does not change which members are
searched) bounds the search: candidates run cheapest first; a per-series model is timed on a few
series first and skipped when its projected cost exceeds what is left of the budget. `describe()` lists
members, weights, validation scores and what was skipped and why. With too little history to validate,
`auto` falls back to naive and AutoETS equally weighted (and says so); with too little for that, the
error says how much is needed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from forecasting.base import Forecaster, create_forecaster, register
from forecasting.calibration import (
    SideScaler,
    calibration_strength,
    centre_of,
    clip_nonnegative,
    keep_centre,
)
from forecasting.data import LongData, canonical_columns, series_scale, to_utc
from forecasting.ensemble import choose_weights, combine, row_crps, row_squared_error
from forecasting.evidence import Evidence, PendingForecasts
from forecasting.types import (
    DEFAULT_QUANTILES,
    ForecastingError,
    InvalidConfigError,
    make_forecast_frame,
    quantile_columns,
)

Key = tuple[str, str]
WeightSets = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Per-series and pooled weights of the quantiles, then of the means."""
ID = ["series", "metric", "horizon"]


@dataclass(frozen=True)
class Candidate:
    """One member the search may use: a registry model, its configuration, and how its cost grows."""

    model: str
    config: Mapping[str, Any]
    per_series: bool = False  # cost grows with the number of series (timed on a probe first)
    sampled: bool = False  # a global model whose cost grows with its `max_train_rows` (sized to the budget)
    twin_without_covariates: str | None = None  # the same as this candidate when no entity has other metrics


def default_candidates(horizon: int) -> dict[str, Candidate]:
    """The candidate set, cheapest first."""
    return {
        "naive": Candidate("seasonal_naive", {"season_length": 1}),
        "seasonal_naive": Candidate("seasonal_naive", {}),
        "seasonal_window": Candidate("seasonal_window", {}),
        # one thread: the search's budget is CPU seconds, and LightGBM's OpenMP threads spin-wait when the
        # machine is busy (measured 5-10x slower boosters at a load of 3 on 2 cores; one thread is not)
        "lightgbm": Candidate("lightgbm", {"max_horizon": horizon, "num_threads": 1}, sampled=True),
        # the same model reading only the series' own past: the other indicators of an entity help on some
        # data and hurt on other (bench/forecast_covariates.py), so validation chooses per series
        "lightgbm_no_covariates": Candidate(
            "lightgbm",
            {"max_horizon": horizon, "num_threads": 1, "covariates": False},
            sampled=True,
            twin_without_covariates="lightgbm",
        ),
        "autoets": Candidate("autoets", {}, per_series=True),
        "autotheta": Candidate("autotheta", {}, per_series=True),
    }


FALLBACK = ("naive", "autoets")  # with no evidence: the classic robust pair, equally weighted
_PROBE_SERIES = 8
_PROBE_ROW_SHARE = 8  # a sampled model is timed on 1/8 of its training rows
_MIN_SAMPLED_ROWS = 2_000  # below this a sampled model is skipped rather than starved


def rows_within_budget(
    rows: int, probe: int, available: int, spent: float, left: float
) -> tuple[int | None, float]:
    """(rows a sampled model may train on, projected seconds of its full fit), from a probe fit that took
    `spent` seconds on `probe` rows: cost is taken as linear in the rows used (`available` caps both), the
    sample shrinks to what `left` seconds allow, and None means fewer than the minimum would be left."""
    projected = spent * min(rows, available) / max(min(probe, available), 1)
    if projected <= left:
        return rows, projected
    fitting = int(rows * max(left, 0.0) / projected)
    return (fitting if fitting >= _MIN_SAMPLED_ROWS else None), projected


def _with_pooled_rows(weights: np.ndarray, pooled: np.ndarray, extra: int) -> np.ndarray:
    """Per-series weights (G, M) with `extra` new series appended, each given the pooled weights."""
    return np.vstack([weights, np.tile(pooled, (extra, 1))])


def _row_weights(
    weights: np.ndarray, pooled: np.ndarray, rows: np.ndarray, used: list[int], ok: np.ndarray
) -> np.ndarray:
    """Member weights (n, M) of each forecast row: its series' weights (the pooled ones for a series never
    validated), restricted to the members that answered, renormalised (equal when none weighted is left)."""
    w = np.where(rows[:, None] >= 0, weights[np.maximum(rows, 0)], pooled[None, :])[:, used]
    w = np.where(ok, w, 0.0)
    total = w.sum(axis=1, keepdims=True)
    even = ok / np.maximum(ok.sum(axis=1, keepdims=True), 1)
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), even)


@register("auto")
class AutoForecaster(Forecaster):
    """Rolling-origin validation, greedy ensemble selection per series, median-preserving calibration."""

    name = "auto"

    def __init__(
        self,
        *,
        horizon: int = 24,
        candidates: Sequence[str] | None = None,
        candidate_config: Mapping[str, Mapping[str, Any]] | None = None,
        n_windows: int | None = None,
        validation_points: int = 48,
        stride: int | None = None,
        rounds: int = 20,
        time_budget: float = 45.0,  # CPU seconds
        series_weight_share: float | None = None,
        calibrate: bool = True,
        calibration_strength: float | None = None,
        online_weights: bool = True,
        online_evidence: float = 2.0,
        short_horizon_steps: int | None = None,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        known = default_candidates(max(1, horizon))
        chosen = tuple(candidates) if candidates is not None else tuple(known)
        unknown = [c for c in chosen if c not in known]
        problems = []
        if unknown:
            problems.append(f"unknown candidate(s) {unknown}; choose from {list(known)}")
        if not chosen:
            problems.append("candidates must not be empty")
        if horizon < 1 or validation_points < 1 or rounds < 1:
            problems.append("horizon, validation_points and rounds must be >= 1")
        if (n_windows is not None and n_windows < 1) or (stride is not None and stride < 1):
            problems.append("n_windows and stride must be >= 1")
        if series_weight_share is not None and not 0.0 <= series_weight_share <= 1.0:
            problems.append(f"series_weight_share must be in [0, 1] or None, got {series_weight_share}")
        if calibration_strength is not None and not 0.0 <= calibration_strength <= 1.0:
            problems.append(f"calibration_strength must be in [0, 1] or None, got {calibration_strength}")
        if not online_evidence >= 1.0:
            problems.append(
                f"online_evidence must be >= 1 (validation windows of evidence kept), got {online_evidence}"
            )
        if short_horizon_steps is not None and short_horizon_steps < 0:
            problems.append(
                f"short_horizon_steps must be >= 0 (0: one set of weights), got {short_horizon_steps}"
            )
        if not time_budget > 0:
            problems.append(f"time_budget must be positive seconds, got {time_budget}")
        if problems:
            raise InvalidConfigError("; ".join(problems))
        self.horizon = horizon
        self.candidates = chosen
        self.candidate_config = {k: dict(v) for k, v in (candidate_config or {}).items()}
        self.n_windows = n_windows
        self.validation_points = validation_points
        self.stride = stride
        self.rounds = rounds
        self.time_budget = time_budget
        self.series_weight_share = series_weight_share
        self.calibrate = calibrate
        self.calibration_strength = calibration_strength
        self.online_weights = online_weights
        self.online_evidence = online_evidence
        self.short_horizon_steps = short_horizon_steps
        """Steps 1..n get weights of their own, chosen on those steps' evidence rows (None: the first
        quarter of `horizon`; 0: one set of weights for every step)."""
        self._sized: dict[str, dict[str, int]] = {}
        self._skipped: dict[str, str] = {}

    # ---- fit ---------------------------------------------------------------------------------------
    def _spec(self, name: str) -> Candidate:
        base = default_candidates(self.horizon)[name]
        cfg = {**base.config, **self.candidate_config.get(name, {}), **self._sized.get(name, {})}
        return replace(base, config=cfg)

    def _member(self, name: str) -> Forecaster:
        spec = self._spec(name)
        cfg: dict[str, Any] = {"quantiles": self.quantiles, **spec.config}
        if self.target_metrics is not None:
            cfg.setdefault("target_metrics", self.target_metrics)
        if self.freq is not None:
            cfg.setdefault("freq", self.freq)
        return create_forecaster(spec.model, **cfg)

    def _windows(self, n_stamps: int) -> tuple[int, int]:
        stride = self.stride or self.horizon
        wanted = self.n_windows or max(3, min(24, math.ceil(self.validation_points / self.horizon)))
        # keep at least as much history before the first cutoff as the validation window spans, and
        # never less than `_min_fit()` steps
        room = min((n_stamps - self.horizon) // 2, n_stamps - self.horizon - self._min_fit())
        fit = max(0, min(wanted, (room - 1) // stride + 1 if room >= 1 else 0))
        return fit, stride

    def _min_fit(self) -> int:
        return max(2 * self.horizon, 16)

    def _fit_data(self, data: LongData, raw: pd.DataFrame) -> None:
        start = time.process_time()
        raw = canonical_columns(raw)
        self._target_names = data.targets
        self._keys: list[Key] = []
        self._scales: dict[Key, float] = {}
        self._nonneg: dict[Key, bool] = {}
        self._remember(data)
        targets = data.frame[data.frame["metric"].isin(data.targets)]
        stamps = np.sort(pd.DatetimeIndex(to_utc(targets["ts"]).unique()).asi8)  # int64 ns: fast masks
        n_windows, stride = self._windows(len(stamps))
        self._skipped = {}
        self._sized = {}
        self._members: dict[str, Forecaster] = {}
        self._weights = np.ones((0, 0))
        self._global = np.ones(0)
        self._mean_weights = np.ones((0, 0))
        self._mean_global = np.ones(0)
        self._scaler = SideScaler(self.quantiles)
        self._scores: dict[str, dict[str, float]] = {}
        self._cutoffs: list[str] = []
        self._fit_cost: dict[str, float] = {}
        self._refitted: list[str] = list(FALLBACK) if n_windows == 0 else []
        self._not_refitted: dict[str, str] = {}
        self._evidence: Evidence | None = None  # the scored forecasts weights are chosen on (`_select`)
        self._pending: PendingForecasts | None = None
        self._reweighings = 0
        self._short: WeightSets | None = None  # the first steps' own weights (`short_horizon_steps`)
        if n_windows == 0:
            need = self._min_fit() + self.horizon + 1
            why = f"history too short to validate ({len(stamps)} time steps; validation needs >= {need})"
            self._skipped = {c: why for c in self.candidates if c not in FALLBACK}
            self._members = {name: self._member(name).fit(raw) for name in FALLBACK}
            self._weights = np.full((len(self._keys), len(FALLBACK)), 1.0 / len(FALLBACK))
            self._global = np.full(len(FALLBACK), 1.0 / len(FALLBACK))
            self._mean_weights, self._mean_global = self._weights.copy(), self._global.copy()
            self._fit_seconds = time.process_time() - start
            return
        last = len(stamps) - 1 - self.horizon
        cut_idx = sorted(last - j * stride for j in range(n_windows))
        cutoffs = stamps[cut_idx]
        self._cutoffs = [pd.Timestamp(int(c), tz="UTC").isoformat() for c in cutoffs]
        ts = pd.DatetimeIndex(to_utc(raw["ts"])).asi8
        actual = data.frame.rename(columns={"series_id": "series", "ts": "timestamp", "value": "y"})
        forecasts: dict[str, pd.DataFrame] = {}
        errors: list[ForecastingError] = []
        alone = not (data.frame.groupby("series_id")["metric"].nunique() > 1).any()
        for name in self.candidates:
            left = self.time_budget - (time.process_time() - start)
            if left <= 0 and forecasts:  # the cheapest candidate always runs
                self._skipped[name] = "time budget spent before this candidate"
                continue
            twin = self._spec(name).twin_without_covariates
            if alone and twin in self.candidates:
                self._skipped[name] = f"no entity has other indicators: the same model as `{twin}`"
                continue
            try:
                if self._spec(name).per_series and not self._probe_fits(name, raw, ts, cutoffs, left):
                    continue
                if self._spec(name).sampled and not self._size_to_budget(name, raw, ts, cutoffs, left):
                    continue
                model, frame = self._validate(name, raw, ts, cutoffs)
            except ForecastingError as error:
                self._skipped[name] = f"{type(error).__name__}: {error}"
                errors.append(error)
                continue
            self._members[name] = model
            forecasts[name] = frame
        if not forecasts:  # the first member's own error says what is missing (e.g. how much history)
            if errors:
                raise errors[0]
            raise InvalidConfigError("; ".join(f"{k}: {v}" for k, v in self._skipped.items()))
        self._select(forecasts, actual)
        self._refit_weighted(raw, ts, cutoffs[0], start)
        self._fit_seconds = time.process_time() - start

    def _refit_weighted(self, raw: pd.DataFrame, ts: np.ndarray, first_cutoff: int, start: float) -> None:
        """Refit the members that carry weight on the whole window, cheapest first, each only when its
        projected cost (its validation fit, scaled by the rows it gains) fits in what is left of the
        budget."""
        names = list(self._members)
        weighted = (self._weights > 0).any(axis=0) | (self._global > 0)
        mean_w, mean_g = self._mean_weighting()
        weighted |= (mean_w > 0).any(axis=0) | (mean_g > 0)
        for part in getattr(self, "_short", None) or ():
            weighted |= (part > 0).any(axis=0) if part.ndim == 2 else part > 0
        grows = len(raw) / max(int((ts <= first_cutoff).sum()), 1)
        self._refitted = []
        self._not_refitted = {}
        for i in sorted(range(len(names)), key=lambda i: self._fit_cost.get(names[i], 0.0)):
            name = names[i]
            if not weighted[i]:
                continue
            projected = self._fit_cost.get(name, 0.0) * grows
            left = self.time_budget - (time.process_time() - start)
            if projected > left:
                self._not_refitted[name] = (
                    f"refit projected {projected:.1f} s, {max(left, 0):.1f} s left of "
                    f"time_budget={self.time_budget:g}: kept as validated, updated with the rest"
                )
                continue
            try:
                self._members[name] = self._member(name).fit(raw)
            except ForecastingError as error:  # the validated state still forecasts
                self._not_refitted[name] = f"refit failed, kept as validated: {type(error).__name__}: {error}"
                continue
            self._refitted.append(name)

    def _probe_fits(
        self, name: str, raw: pd.DataFrame, ts: np.ndarray, cutoffs: np.ndarray, left: float
    ) -> bool:
        """Time a per-series candidate on a few series; False (and noted) when it would not fit the budget."""
        entities = raw["series_id"].astype(str).unique()
        if len(entities) <= 2 * _PROBE_SERIES:
            return True
        picked = entities[np.linspace(0, len(entities) - 1, _PROBE_SERIES + 1).round().astype(int)]
        sid = raw["series_id"].astype(str)
        warm = (sid == picked[0]).to_numpy()  # imports and JIT compilation are not per-series costs
        self._validate(name, raw.loc[warm], ts[warm], cutoffs)
        mask = sid.isin(set(picked[1:])).to_numpy()
        t0 = time.process_time()
        self._validate(name, raw.loc[mask], ts[mask], cutoffs)
        projected = (time.process_time() - t0) * len(entities) / _PROBE_SERIES
        if projected > left:
            self._skipped[name] = (
                f"projected {projected:.0f} s for {len(entities)} series exceeds the {left:.0f} s left of "
                f"time_budget={self.time_budget:g}"
            )
            return False
        return True

    def _size_to_budget(
        self, name: str, raw: pd.DataFrame, ts: np.ndarray, cutoffs: np.ndarray, left: float
    ) -> bool:
        """Time a sampled global model on a share of its training rows and, when its full fit would not
        fit in what is left of the budget, shrink its row sample to what does (noted in `describe()`);
        False (and noted) when that would leave too few rows to learn from."""
        rows = int(self._member(name).get_params()["max_train_rows"])
        probe = max(_MIN_SAMPLED_ROWS, rows // _PROBE_ROW_SHARE)
        if probe >= rows:
            return True
        self._sized[name] = {"max_train_rows": probe}
        t0 = time.process_time()
        timed = self._member(name).fit(raw.loc[ts <= cutoffs[0]])
        spent = time.process_time() - t0
        del self._sized[name]
        available = int(getattr(timed, "n_available_rows_", rows))
        fitting, projected = rows_within_budget(rows, probe, available, spent, left - spent)
        if fitting is None:
            self._skipped[name] = (
                f"projected {projected:.0f} s for {rows:,} training rows; the {max(left - spent, 0):.0f} s "
                f"left of time_budget={self.time_budget:g} would allow fewer than {_MIN_SAMPLED_ROWS:,} rows"
            )
            return False
        if fitting < rows:
            self._sized[name] = {"max_train_rows": fitting}
        return True

    def _validate(
        self, name: str, raw: pd.DataFrame, ts: np.ndarray, cutoffs: np.ndarray
    ) -> tuple[Forecaster, pd.DataFrame]:
        """Fit before the first cutoff (its cost remembered), forecast at every cutoff, then catch up."""
        t0 = time.process_time()
        model = self._member(name).fit(raw.loc[ts <= cutoffs[0]])
        self._fit_cost[name] = time.process_time() - t0
        parts = []
        prev = cutoffs[0]
        for c in cutoffs:
            if c > prev:
                model.update(raw.loc[(ts > prev) & (ts <= c)])
                prev = c
            f = model.predict(self.horizon)
            parts.append(f.loc[f["cutoff"] == pd.Timestamp(int(c), tz="UTC")])
        rest = ts > prev
        if rest.any():
            model.update(raw.loc[rest])
        return model, pd.concat(parts, ignore_index=True)

    def _select(self, forecasts: dict[str, pd.DataFrame], actual: pd.DataFrame) -> None:
        names = list(forecasts)
        on = ["series", "metric", "cutoff", "horizon"]
        joined = forecasts[names[0]][[*on, "timestamp"]].merge(
            actual[["series", "metric", "timestamp", "y"]], on=["series", "metric", "timestamp"]
        )
        for name in names[1:]:
            joined = joined.merge(forecasts[name][on], on=on)
        qcols = quantile_columns(self.quantiles)
        q = np.stack([joined[on].merge(forecasts[n], on=on)[qcols].to_numpy(dtype=float) for n in names])
        y = joined["y"].to_numpy(dtype=float)
        keys = list(zip(joined["series"].astype(str), joined["metric"].astype(str), strict=True))
        self._member_names = names
        where = {k: i for i, k in enumerate(self._keys)}
        group = np.array([where[k] for k in keys], dtype=np.int64)
        scale = np.array([self._scales[k] for k in keys])
        g = len(self._keys)
        if len(y) == 0:
            self._weights = np.full((g, len(names)), 1.0 / len(names))
            self._global = np.full(len(names), 1.0 / len(names))
            self._mean_weights, self._mean_global = self._weights.copy(), self._global.copy()
            return
        cut = joined["cutoff"].to_numpy()
        cutoff_ns = pd.DatetimeIndex(to_utc(joined["cutoff"])).asi8
        # the mean is its own point forecast: its weights are chosen on the loss a mean minimises
        means = np.stack([joined[on].merge(forecasts[n], on=on)["mean"].to_numpy(dtype=float) for n in names])
        horizon_step = joined["horizon"].to_numpy(dtype=np.int64)
        evidence = Evidence(group, cutoff_ns, horizon_step, y, q, means)
        self._evidence_per_series = int(np.bincount(group, minlength=g).max())
        late = cut >= np.sort(np.unique(cut))[len(np.unique(cut)) // 2]  # the later half of the cutoffs
        self._choose_weights(evidence, late)
        self._evidence = evidence.compact()
        means = means[:, :, None]
        step = joined["horizon"].to_numpy()
        w_q, w_mean = self._step_weights(step, lambda own, _pooled: own[group])
        ens_q, _ = combine(q, means[:, :, 0], w_q)
        ens_mean = np.einsum("mn,nm->n", means[:, :, 0], w_mean)
        floor = 1e-2 * scale
        if self.calibrate:
            strength: float | None = self.calibration_strength
            self._strength_losses: dict[str, float] = {}
            if strength is None:
                strength, self._strength_losses = calibration_strength(
                    self.quantiles, y, ens_q, step, floor, late, 1.0 / scale, row_crps
                )
            self._scaler.fit(y, ens_q, step, floor)
            self._scaler.factors = self._scaler.factors**strength
            self._strength = strength
        calibrated = self._scaler.apply(ens_q, step, floor) if self.calibrate else ens_q
        median_at = int(np.argmin(np.abs(np.asarray(self.quantiles) - 0.5)))
        point = [*means[:, :, 0], ens_mean, ens_mean]
        for n, qq, mm in zip([*names, "ensemble", "calibrated"], [*q, ens_q, calibrated], point, strict=True):
            crps = row_crps(y, qq, self.quantiles) / scale
            self._scores[n] = {
                "crps_scaled": float(crps.mean()),
                "mae_scaled": float((np.abs(y - qq[:, median_at]) / scale).mean()),
                "mse_scaled": float((((y - mm) / scale) ** 2).mean()),
                "coverage_80": float(self._coverage(y, qq, 0.8)),
            }
        self._n_validation_rows = len(y)

    def _choose_weights(self, ev: Evidence, late: np.ndarray, keep_shares: bool = False) -> None:
        """Quantile weights on CRPS and mean weights on squared error, each series' own blended with the
        pooled ones (rows weighted by 1 / the series' spread, so series of different units pool);
        `keep_shares`: with the blend chosen at fit (re-choosing it on every few new rows flips it).
        With `short_horizon_steps`, the first steps get a second set chosen on their own rows alone."""
        kept = dict(self._shares) if keep_shares else {}
        if not keep_shares:
            self._shares: dict[str, float] = {}
            self._share_losses: dict[str, dict[str, float]] = {}
        chosen = self._weights_on(ev, late, kept, record=True)
        self._weights, self._global, self._mean_weights, self._mean_global = chosen
        self._short = None
        short = ev.horizon <= self._short_steps
        if short.any():
            self._short = self._weights_on(ev.take(np.flatnonzero(short)), late[short], dict(self._shares))

    @property
    def _short_steps(self) -> int:
        """How many first steps have weights of their own (0: none; models saved before: none)."""
        steps = getattr(self, "short_horizon_steps", 0)
        return max(1, self.horizon // 4) if steps is None else int(steps)

    def _weights_on(
        self, ev: Evidence, late: np.ndarray, shares: dict[str, float], record: bool = False
    ) -> WeightSets:
        """(per-series, pooled) weights of the quantiles and of the means on `ev`; a part without a share
        in `shares` has it chosen out of sample (and, with `record`, noted)."""
        g = len(self._keys)
        scale = np.array([self._scales[k] for k in self._keys])[ev.group]
        chosen: list[np.ndarray] = []
        parts = (
            ("quantiles", ev.q, 1.0 / scale, None),
            ("mean", ev.mean[:, :, None], 1.0 / scale**2, row_squared_error),
        )
        for part, qq, row_w, loss in parts:
            share = shares.get(part, self.series_weight_share)
            w = choose_weights(ev.y, qq, self.quantiles, ev.group, g, late, row_w, self.rounds, loss, share)
            if record:
                self._shares[part] = w.share
                if w.share_losses:
                    self._share_losses[part] = w.share_losses
            chosen += [w.own, w.pooled]
        return chosen[0], chosen[1], chosen[2], chosen[3]

    def _coverage(self, y: np.ndarray, q: np.ndarray, nominal: float) -> float:
        from forecasting.metrics import coverage

        return coverage(y, q, self.quantiles, nominal)

    def _remember(self, data: LongData) -> None:
        frame = data.frame[data.frame["metric"].isin(self._target_names)]
        for (sid, met), vals in frame.groupby(["series_id", "metric"], sort=True)["value"]:
            key = (str(sid), str(met))
            arr = vals.to_numpy()
            if key not in self._scales:
                self._scales[key] = series_scale(arr)
                self._keys.append(key)
            self._nonneg[key] = self._nonneg.get(key, True) and bool(np.nanmin(arr) >= 0.0)

    # ---- update / predict ---------------------------------------------------------------------------
    def _update_data(self, data: LongData, raw: pd.DataFrame) -> None:
        for model in self._members.values():
            model.update(raw)
        before = len(self._keys)
        self._remember(data)
        if len(self._keys) > before:  # new series: the pooled weights until they have evidence
            extra = len(self._keys) - before
            self._weights = _with_pooled_rows(self._weights, self._global, extra)
            mean_w, mean_g = self._mean_weighting()
            self._mean_weights = _with_pooled_rows(mean_w, mean_g, extra)
            if (short := getattr(self, "_short", None)) is not None:
                w, g, mw, mg = short
                self._short = (_with_pooled_rows(w, g, extra), g, _with_pooled_rows(mw, mg, extra), mg)
        self._score_pending(data)

    def _score_pending(self, data: LongData) -> None:
        """Score the forecasts handed out against the values just observed and, when any were, choose the
        weights again on the newest evidence (`forecasting.evidence`)."""
        pending: PendingForecasts | None = getattr(self, "_pending", None)
        if pending is None or not len(pending.group):
            return
        frame = data.frame[data.frame["metric"].isin(self._target_names)]
        frame = frame[np.isfinite(frame["value"].to_numpy(dtype=float))]  # a gap scores nothing
        where = {k: i for i, k in enumerate(self._keys)}
        keys = zip(frame["series_id"].astype(str), frame["metric"].astype(str), strict=True)
        group = np.array([where[k] for k in keys], dtype=np.int64)
        ts = pd.DatetimeIndex(to_utc(frame["ts"])).asi8
        latest = np.full(len(self._keys), np.iinfo(np.int64).min)
        np.maximum.at(latest, group, ts)
        scored, self._pending = pending.resolve(group, ts, frame["value"].to_numpy(dtype=float), latest)
        if not scored.rows or self._evidence is None:
            return
        keep = round(self._evidence_per_series * getattr(self, "online_evidence", 1.0))
        self._evidence = self._evidence.extended(scored, keep)
        self._choose_weights(self._evidence, self._evidence.later_half(), keep_shares=True)
        self._reweighings += 1

    def _predict_frame(self, horizon: int) -> pd.DataFrame:
        names = list(self._members)
        frames: dict[str, pd.DataFrame] = {}
        for name in names:
            try:
                frames[name] = self._members[name].predict(horizon)
            except InvalidConfigError:  # e.g. beyond a LightGBM member's max_horizon: the others answer
                continue
        if not frames:
            raise InvalidConfigError(f"no member of this auto model can forecast {horizon} steps ahead")
        used = [i for i, n in enumerate(names) if n in frames]
        first = frames[names[used[0]]]
        qcols = quantile_columns(self.quantiles)
        ids = first[ID]
        aligned = [ids.merge(frames[names[i]], on=ID, how="left") for i in used]
        q = np.stack([a[qcols].to_numpy(dtype=float) for a in aligned])
        mean = np.stack([a["mean"].to_numpy(dtype=float) for a in aligned])
        keys = list(zip(first["series"].astype(str), first["metric"].astype(str), strict=True))
        where = {k: i for i, k in enumerate(self._keys)}
        rows = np.array([where.get(k, -1) for k in keys], dtype=np.int64)
        ok = np.isfinite(q).all(axis=2).T & np.isfinite(mean).T  # (n, M): a member may miss a row
        step = first["horizon"].to_numpy()
        w, w_mean = self._step_weights(step, lambda own, pooled: _row_weights(own, pooled, rows, used, ok))
        qq, _ = combine(np.nan_to_num(q), np.nan_to_num(mean), w)
        mm = np.einsum("mn,nm->n", np.nan_to_num(mean), w_mean)
        if len(used) == len(names):
            self._remember_forecast(rows, first, q, mean, ok.all(axis=1))
        scale = np.array([self._scales.get(k, 1.0) for k in keys])
        if self.calibrate:
            qq = self._scaler.apply(qq, step, 1e-2 * scale)
        else:
            qq = keep_centre(qq, self.quantiles, centre_of(qq, self.quantiles))
        nonneg = np.array([self._nonneg.get(k, False) for k in keys], dtype=bool)
        qq, mm = clip_nonnegative(qq, mm, nonneg)
        return make_forecast_frame(
            series=first["series"].to_numpy(), metric=first["metric"].to_numpy(), cutoff=first["cutoff"],
            timestamp=first["timestamp"], horizon=step, mean=mm, quantiles=qq, levels=self.quantiles,
            sort_quantiles=False,
        )  # fmt: skip

    def _remember_forecast(
        self, rows: np.ndarray, frame: pd.DataFrame, q: np.ndarray, mean: np.ndarray, ok: np.ndarray
    ) -> None:
        """Keep every member's forecast of the known series, to be scored when its targets arrive."""
        if not self.online_weights or getattr(self, "_evidence", None) is None:
            return
        keep = (rows >= 0) & ok
        made = PendingForecasts(
            rows[keep],
            pd.DatetimeIndex(to_utc(frame["timestamp"])).asi8[keep],
            pd.DatetimeIndex(to_utc(frame["cutoff"])).asi8[keep],
            frame["horizon"].to_numpy(dtype=np.int64)[keep],
            q[:, keep].astype(np.float32),
            mean[:, keep].astype(np.float32),
        )
        before = getattr(self, "_pending", None) or PendingForecasts.empty(q.shape[0], q.shape[2])
        self._pending = before.add(made, keep_cutoffs=self.horizon)

    def _step_weights(
        self, step: np.ndarray, weigh: Callable[[np.ndarray, np.ndarray], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Member weights of each row (quantiles, means): `weigh(per-series, pooled)` of the all-step
        set, replaced on rows of the first `_short_steps` steps by the short-horizon set's."""
        mean_w, mean_g = self._mean_weighting()
        w_q, w_mean = weigh(self._weights, self._global), weigh(mean_w, mean_g)
        if (short := getattr(self, "_short", None)) is not None:
            first = (step <= self._short_steps)[:, None]
            w_q = np.where(first, weigh(short[0], short[1]), w_q)
            w_mean = np.where(first, weigh(short[2], short[3]), w_mean)
        return w_q, w_mean

    def _mean_weighting(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-series and pooled weights of the members' means (models saved before they had their own:
        the quantile weights)."""
        return getattr(self, "_mean_weights", self._weights), getattr(self, "_mean_global", self._global)

    # ---- explanation ---------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Members, weights (pooled and per series), validation scores, what was skipped, and the cost."""
        self._require_fitted()
        names = list(self._members)
        per_series = {
            f"{k[0]}/{k[1]}" if k[1] != "value" else k[0]: {
                n: round(float(w), 4) for n, w in zip(names, self._weights[i], strict=True) if w > 0
            }
            for i, k in enumerate(self._keys)
        }
        return {
            "model": self.name,
            "members": names,
            "weights": {n: round(float(w), 4) for n, w in zip(names, self._global, strict=True)},
            "mean_weights": {
                n: round(float(w), 4) for n, w in zip(names, self._mean_weighting()[1], strict=True)
            },
            "mean_series_weights": {
                n: round(float(w), 4) for n, w in zip(names, self._weights.mean(axis=0), strict=True)
            }
            if len(self._weights)
            else {},
            "series_weights": per_series,
            "validation": {
                "cutoffs": self._cutoffs,
                "horizon": self.horizon,
                "rows": int(getattr(self, "_n_validation_rows", 0)),
                "scores": self._scores,
            },
            "short_horizon_weights": {
                "steps": self._short_steps,
                "weights": {n: round(float(w), 4) for n, w in zip(names, short[1], strict=True)},
                "mean_weights": {n: round(float(w), 4) for n, w in zip(names, short[3], strict=True)},
            }
            if (short := getattr(self, "_short", None)) is not None
            else None,
            "online_weights": {
                "enabled": bool(getattr(self, "online_weights", False)),
                "evidence_rows": int(ev.rows) if (ev := getattr(self, "_evidence", None)) is not None else 0,
                "newest_cutoff": pd.Timestamp(int(ev.cutoff.max()), tz="UTC").isoformat()
                if ev is not None and ev.rows
                else None,
                "reweighings": int(getattr(self, "_reweighings", 0)),
            },
            "series_weight_share": dict(getattr(self, "_shares", {})),
            "series_weight_share_tried": dict(getattr(self, "_share_losses", {})),
            "calibration_strength": getattr(self, "_strength", 1.0) if self.calibrate else None,
            "calibration_strength_tried": dict(getattr(self, "_strength_losses", {})),
            "calibration_factors": np.round(self._scaler.factors, 4).tolist() if self.calibrate else None,
            "skipped": dict(self._skipped),
            "sized_to_budget": {n: dict(cfg) for n, cfg in getattr(self, "_sized", {}).items()},
            "refitted_on_whole_window": list(getattr(self, "_refitted", [])),
            "not_refitted": dict(getattr(self, "_not_refitted", {})),
            "fit_cpu_seconds": round(float(self._fit_seconds), 3),
            "time_budget": self.time_budget,
        }
