"""Members of the interference (degradation-ratio) forecaster, and the per-series choice among them.

Degradation series of noisy-neighbour telemetry are mostly noise around a slowly moving level, with
regime-like shifts on some resources (memory bandwidth) and none on others (CPU cache, Redis). Which
simple rule forecasts a series best is therefore a property of the series, not of the project, so it is
chosen from the series' own recent past (as `auto` does for loads):

* `RollingMedianForecaster`: the median of the last `window` observations, flat ahead; its quantiles are
  that median plus the empirical quantiles of how far observations fell from the rolling median `h`
  steps before them, over the last `spread_window` points (per horizon step, so the interval widens
  when the level wanders and stays narrow when it does not).
* `ValidatedChoice`: fits each member on all but the last `validation_points` time steps, walks through
  them (update + predict `horizon` steps every `stride` steps), and gives each series the member with
  the lowest validation CRPS (ties to the earlier, simpler member). Series seen first later, or all of
  them when history is too short to validate, get the member most series chose (or the first member).

Neither is in the generic registry: they are resolved by name by `forecasting.interference`
(`member_forecaster`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecasting.base import Forecaster, PanelForecaster, build_base
from forecasting.data import LongData, rolling_nanmedian, row_quantiles
from forecasting.metrics import crps_weights, pinball_loss
from forecasting.types import (
    DEFAULT_QUANTILES,
    METRIC,
    SERIES_ID,
    TS,
    VALUE,
    ForecastingError,
    InvalidConfigError,
    mean_from_quantiles,
    quantile_columns,
)

Key = tuple[str, str]


class RollingMedianForecaster(PanelForecaster):
    """Median of the last `window` observations, flat ahead, with per-step empirical residual spread."""

    name = "rolling_median"

    def __init__(
        self,
        *,
        window: int = 24,
        spread_window: int = 168,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        if window < 1:
            raise InvalidConfigError(f"window must be >= 1, got {window}")
        if spread_window < 0:
            raise InvalidConfigError(f"spread_window must be >= 0, got {spread_window}")
        self.window = window
        self.spread_window = spread_window
        self._spread_steps = 1

    def history_needed(self) -> int:
        return self.window + self.spread_window + 64  # room for residuals up to 64 steps ahead

    def _fit(self) -> None:
        pass

    def _predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        tails, _ = self._panel.tails(self._targets, history_length(self.window, self.spread_window, horizon))
        q = rolling_median_quantiles(tails, self.window, self.spread_window, self.quantiles, horizon)
        return mean_from_quantiles(q, self.quantiles), q


MAX_SPREAD_STEPS = 64
"""Horizon steps with their own residual spread; later steps reuse the last one."""


def history_length(window: int, spread_window: int, horizon: int) -> int:
    """Observations `rolling_median_quantiles` reads per series for `horizon` steps."""
    return window + spread_window + min(horizon, MAX_SPREAD_STEPS)


def rolling_median_quantiles(
    tails: np.ndarray, window: int, spread_window: int, levels: Sequence[float], horizon: int
) -> np.ndarray:
    """Quantiles (n, horizon, K) of the rolling-median forecast from right-aligned histories (n, L), NaN
    for missing: the median of the last `window` values plus, per step h, the empirical quantiles of how
    far each of the last `spread_window` values fell from the rolling median h steps before it. Window 1
    is persistence with the empirical spread of h-step changes. Arrays only, so the replay calls it
    directly on its slowdowns."""
    span = min(horizon, MAX_SPREAD_STEPS)
    length = window + spread_window + span
    if tails.shape[1] < length:
        tails = np.pad(tails, ((0, 0), (length - tails.shape[1], 0)), constant_values=np.nan)
    tails = tails[:, -length:]
    n = tails.shape[0]
    medians = rolling_nanmedian(tails, window)  # NaN where a window has no observation
    # medians[:, j] is the median of tails[:, j : j + window], i.e. known at position j + window - 1
    level = medians[:, -1]
    level = np.where(np.isfinite(level), level, 0.0)
    q = np.zeros((n, horizon, len(levels)))
    if spread_window > 0:
        targets = tails[:, -spread_window:]
        for h in range(1, span + 1):
            start = length - spread_window - h - window + 1  # the median known h steps before
            resid, counts = row_quantiles(targets - medians[:, start : start + spread_window], levels)
            q[:, h - 1, :] = np.where(counts[:, None] > 0, resid, 0.0)
        q[:, span:, :] = q[:, span - 1 : span, :]
    return np.sort(level[:, None, None] + q, axis=2)


def choose_windows(
    values: np.ndarray,
    windows: Sequence[int],
    spread_window: int,
    levels: Sequence[float],
    horizon: int,
    validation_points: int,
) -> np.ndarray:
    """Per series (rows of `values`, oldest first), the index of the rolling-median window with the
    lowest CRPS over forecasts from the last `validation_points` cutoffs (about 24 of them), scored on
    every step: `ValidatedChoice`'s rule for array members (ties to the earlier window)."""
    n, k = values.shape
    stride = max(1, validation_points // 24)
    cutoffs = range(max(k - horizon - validation_points, 1), k - horizon + 1, stride)
    weights = crps_weights(levels)
    loss = np.zeros((len(windows), n))
    for c in cutoffs:
        actual = values[:, c : c + horizon]
        for i, w in enumerate(windows):
            past = values[:, max(c - history_length(w, spread_window, horizon), 0) : c]
            q = rolling_median_quantiles(past, w, spread_window, levels, horizon)
            pin = 2.0 * pinball_loss(actual.reshape(-1), q.reshape(-1, len(levels)), levels) @ weights
            loss[i] += np.nanmean(pin.reshape(n, horizon), axis=1)
    return np.argmin(loss, axis=0)


def lightgbm_member_config(horizon: int, fast: bool = True) -> dict[str, Any]:
    """LightGBM quantiles on degradation + split conformal, as measured in docs/interference.md (`fast`:
    40 trees, one thread, the member the service's `choice` uses; otherwise 120 trees, all threads)."""
    lgb: dict[str, Any] = {
        "windows": (6, 24, 72),
        "n_lags": 6,
        "calendar": False,  # the VM noise data shows no hour-of-day pattern; validation would drop it
        "season_lengths": (),
        "n_estimators": 40 if fast else 120,
        "max_train_rows": 15_000 if fast else 80_000,
        "num_leaves": 15,
        "min_data_in_leaf": 50,
        "learning_rate": 0.05,
        "num_threads": 1 if fast else 0,
    }
    return {"base_config": lgb, "horizon": horizon, "calibration_steps": 40 if fast else 120}


MEMBERS: dict[str, tuple[str, dict[str, Any]]] = {
    "persistence": ("seasonal_naive", {"season_length": 1}),
    "rolling_median": ("rolling_median", {}),
    "lightgbm": ("lightgbm_conformal", lightgbm_member_config(12)),
}
"""Default members of `ValidatedChoice`, cheapest first: name -> (model, config)."""


def member_forecaster(
    model: str | Forecaster,
    config: Mapping[str, Any],
    quantiles: Sequence[float],
    target_metrics: Sequence[str] | None,
    freq: pd.Timedelta | None,
) -> Forecaster:
    """A fresh member: the local `rolling_median` / `choice`, or any registered model by name."""
    if isinstance(model, str) and model in LOCAL_MODELS:
        cfg = {"quantiles": quantiles, "target_metrics": target_metrics, "freq": freq, **config}
        return LOCAL_MODELS[model](**cfg)
    return build_base(model, config, quantiles, target_metrics=target_metrics, freq=freq, force_targets=True)


class ValidatedChoice(Forecaster):
    """Per series, the member with the lowest CRPS on a rolling-origin validation window."""

    name = "choice"

    def __init__(
        self,
        *,
        members: Sequence[str] = ("persistence", "rolling_median", "lightgbm"),
        member_config: Mapping[str, Mapping[str, Any]] | None = None,
        horizon: int = 12,
        validation_points: int = 168,
        stride: int | None = None,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        unknown = [m for m in members if m not in MEMBERS]
        if unknown or not members:
            raise InvalidConfigError(f"members must be a non-empty subset of {list(MEMBERS)}, got {members}")
        extra = [m for m in (member_config or {}) if m not in members]
        if extra:
            raise InvalidConfigError(f"member_config names {extra}, which are not among members {members}")
        if horizon < 1 or validation_points < 1 or (stride is not None and stride < 1):
            raise InvalidConfigError("horizon, validation_points and stride must be >= 1")
        self.members = tuple(members)
        self.member_config = {k: dict(v) for k, v in (member_config or {}).items()}
        self.horizon = horizon
        self.validation_points = validation_points
        self.stride = stride

    # ---- evidence ------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Members, each series' choice (as one-hot weights) and the pooled validation CRPS per member."""
        self._require_fitted()
        return {
            "model": self.name,
            "members": list(self._models),
            "weights": {self._pooled: 1.0},
            "series_weights": {_label(k): {m: 1.0} for k, m in self._choice.items()},
            "validation": {"scores": self._scores, "cutoffs": self._cutoffs},
            "skipped": self._skipped,
        }

    @property
    def choice(self) -> dict[Key, str]:
        """The member chosen for each (series, metric)."""
        self._require_fitted()
        return dict(self._choice)

    # ---- contract ----------------------------------------------------------------------------------
    def _make(self, member: str, targets: Sequence[str]) -> Forecaster:
        model, config = MEMBERS[member]
        cfg = {**config, **self.member_config.get(member, {})}
        if model == "lightgbm_conformal":
            cfg["horizon"] = max(int(cfg.get("horizon", 1)), self.horizon)
        return member_forecaster(model, cfg, self.quantiles, targets, self.freq)

    def _fit_data(self, data: LongData, raw: pd.DataFrame) -> None:
        frame = data.frame
        targets = sorted(data.targets)
        stage, n_cut = self._stages(frame)
        self._skipped: dict[str, str] = {}
        self._scores: dict[str, float] = {}
        self._cutoffs = n_cut
        models: dict[str, Forecaster] = {}
        for member in self.members:
            try:
                models[member] = self._make(member, targets).fit(frame.loc[stage == 0])
            except ForecastingError as error:
                self._skipped[member] = str(error)[:300]
        if not models:
            raise ForecastingError(f"no member could be fitted: {self._skipped}")
        if n_cut == 0:
            self._skipped["validation"] = (
                f"every series needs more than {2 * (self.validation_points + self.horizon)} time steps"
            )
            for model in models.values():
                model.update(frame.loc[stage > 0])
            self._models, self._pooled = models, next(iter(models))
            self._choice: dict[Key, str] = {}
            return
        self._choose(models, self._validate(models, frame, stage, n_cut))

    def _stages(self, frame: pd.DataFrame) -> tuple[np.ndarray, int]:
        """Per row, the validation step that reveals it (0: training part), and the number of steps.

        Each series walks through its own last `validation_points` time steps (series end at different
        times); one with too little history is not validated and is all training part.
        """
        stride = self.stride or max(1, self.validation_points // 24)
        stage = np.zeros(len(frame), dtype=np.int64)
        n_cut = len(range(0, self.validation_points, stride))
        ts = frame[TS].to_numpy()
        validated = 0
        for idx in frame.groupby(SERIES_ID, sort=False).indices.values():
            times = np.unique(ts[idx])
            if len(times) <= 2 * (self.validation_points + self.horizon):
                continue
            cuts = times[-(self.validation_points + self.horizon) : -self.horizon : stride][:n_cut]
            stage[idx] = np.searchsorted(cuts, ts[idx], side="left")
            validated += 1
        return stage, (n_cut if validated else 0)

    def _validate(
        self, models: dict[str, Forecaster], frame: pd.DataFrame, stage: np.ndarray, n_cut: int
    ) -> pd.DataFrame:
        """Mean validation CRPS per (series, metric, member); members end updated through the frame."""
        actual = frame[[SERIES_ID, METRIC, TS, VALUE]].rename(
            columns={SERIES_ID: "series", METRIC: "metric", TS: "timestamp", VALUE: "y"}
        )
        weights = crps_weights(self.quantiles)
        cols = quantile_columns(self.quantiles)
        parts: list[pd.DataFrame] = []
        for step in range(n_cut + 1):
            fresh = frame.loc[stage == step] if step else frame.iloc[:0]
            for member, model in models.items():
                if not fresh.empty:
                    model.update(fresh)
                if step == n_cut:
                    continue
                out = model.predict(self.horizon).merge(actual, on=["series", "metric", "timestamp"])
                if out.empty:
                    continue
                y = out["y"].to_numpy(dtype=float)
                crps = 2.0 * pinball_loss(y, out[cols].to_numpy(dtype=float), self.quantiles) @ weights
                parts.append(pd.DataFrame({"series": out["series"], "metric": out["metric"],
                                           "member": member, "crps": crps}))  # fmt: skip
        if not parts:
            return pd.DataFrame(columns=["series", "metric", "member", "crps"])
        scores = pd.concat(parts, ignore_index=True)
        return scores.groupby(["series", "metric", "member"], as_index=False)["crps"].mean()

    def _choose(self, models: dict[str, Forecaster], losses: pd.DataFrame) -> None:
        order = {m: i for i, m in enumerate(models)}
        losses = losses.assign(rank=losses["member"].map(order)).sort_values(
            ["series", "metric", "crps", "rank"]
        )
        best = losses.drop_duplicates(["series", "metric"], keep="first")
        rows = zip(best["series"], best["metric"], best["member"], strict=True)
        self._choice = {(str(s), str(m)): str(b) for s, m, b in rows}
        self._scores = {str(k): float(v) for k, v in losses.groupby("member")["crps"].mean().items()}
        counts = pd.Series(list(self._choice.values())).value_counts()
        self._pooled = str(counts.index[0]) if len(counts) else next(iter(models))
        used = set(self._choice.values()) | {self._pooled}
        self._models = {m: model for m, model in models.items() if m in used}

    def _update_data(self, data: LongData, raw: pd.DataFrame) -> None:
        for model in self._models.values():
            model.update(data.frame)

    def _predict_frame(self, horizon: int) -> pd.DataFrame:
        parts = []
        for member, model in self._models.items():
            out = model.predict(horizon)
            keys = list(zip(out["series"].astype(str), out["metric"].astype(str), strict=True))
            mine = np.array([self._choice.get(k, self._pooled) == member for k in keys], dtype=bool)
            parts.append(out.loc[mine])
        frame = pd.concat(parts, ignore_index=True)
        return frame.sort_values(["series", "metric", "horizon"], kind="stable").reset_index(drop=True)


def _label(key: Key) -> str:
    return key[0] if key[1] == "value" else f"{key[0]}/{key[1]}"


LOCAL_MODELS: dict[str, type[Forecaster]] = {
    "rolling_median": RollingMedianForecaster,
    "choice": ValidatedChoice,
}
"""Interference members resolved by name without the generic registry."""
