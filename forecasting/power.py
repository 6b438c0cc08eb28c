"""Power forecaster: per-server and per-power-domain power quantiles, and P(domain total > budget).

The power policy keeps `P(sum of a domain's server power > budget) <= eps` (`policies/power.py`), so it needs
the distribution of each domain's *total*, not only each server's. Servers of one domain are strongly
correlated (they serve the same request bursts), which rules out the two shortcuts:

* summing per-server quantiles assumes perfectly correlated servers (comonotone) and overstates the
  spread of the total, so the policy would leave budget unused;
* summing independent samples of the server marginals assumes independence and understates it, so the
  policy would exceed the budget more often than eps.

So `PowerForecaster` forecasts each domain total directly as its own series (`domain:<name>`, the sum of
its servers at each timestamp), next to the servers, with the same base model (default
`lightgbm_conformal`: global LightGBM quantiles, split-conformal intervals). The total's distribution
is learnt from the totals that happened, which carries whatever correlation the servers really have.
A total is only formed at timestamps where every server of the domain reported (a partial sum would look
like a power drop); the domain's servers must share one time grid.

`exceedance_probability` turns quantiles into P(X > budget) by interpolating the CDF linearly between
quantile knots, with exponential tails beyond the outermost levels (fitted to the last two knots), so the
answer is continuous, non-increasing in the budget and never claims zero risk just past q0.99.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from forecasting.base import Forecaster, build_base, register
from forecasting.data import LongData
from forecasting.types import (
    DEFAULT_QUANTILES,
    METRIC,
    SERIES_ID,
    TS,
    VALUE,
    InvalidConfigError,
    InvalidSeriesError,
    quantile_columns,
    quantile_levels_of,
)

DOMAIN_PREFIX = "domain:"
"""Series-id prefix of forecast domain totals."""

_DEFAULT_BASE_CONFIG: dict[str, Any] = {
    "base_config": {"n_estimators": 60, "max_train_rows": 20_000, "num_leaves": 15, "num_threads": 1},
    "horizon": 12,
}
"""Default base (lightgbm_conformal) configuration: a few power series need few trees; one thread keeps
OpenMP from spinning on small inputs. Horizon 12 covers two minutes at 10 s power samples."""


@register("power")
class PowerForecaster(Forecaster):
    """Forecast server power and, given `domains` (server -> power domain), each domain's total."""

    name = "power"
    _recent: pd.DataFrame

    def __init__(
        self,
        base: str | Forecaster = "lightgbm_conformal",
        *,
        base_config: Mapping[str, Any] | None = None,
        domains: Mapping[str, str] | None = None,
        retain: int = 8,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        if isinstance(base, Forecaster) and base.is_fitted:
            raise InvalidConfigError("pass an unfitted base forecaster")
        if retain < 1:
            raise InvalidConfigError(f"retain must be >= 1, got {retain}")
        self.base = base
        self.base_config = dict(_DEFAULT_BASE_CONFIG if base_config is None else base_config)
        self.domains = {str(k): str(v) for k, v in domains.items()} if domains is not None else None
        self.retain = retain

    @property
    def model(self) -> Forecaster:
        """The fitted base model (servers and domain totals)."""
        self._require_fitted()
        return self._model

    def _make_base(self) -> Forecaster:
        return build_base(
            self.base, self.base_config, self.quantiles, target_metrics=self.target_metrics, freq=self.freq
        )

    def _with_totals(self, data: LongData) -> pd.DataFrame:
        """The input plus a `domain:<name>` row per (domain, metric, ts) at which every server reported."""
        frame = data.frame
        if self.domains is None:
            return frame
        members = frame.loc[frame[SERIES_ID].isin(self.domains) & frame[METRIC].isin(data.targets)]
        recent = pd.concat([self._recent, members], ignore_index=True)
        recent = recent.drop_duplicates([SERIES_ID, METRIC, TS], keep="last")
        if not recent.empty:
            times = recent[TS].drop_duplicates().sort_values()
            keep_from = times.iloc[-min(len(times), self.retain)]
            self._recent = recent.loc[recent[TS] >= keep_from].reset_index(drop=True)
        now = recent.loc[recent[TS].isin(members[TS].unique())]
        totals = domain_totals(now, self.domains)
        return pd.concat([frame, totals], ignore_index=True)

    def _fit_data(self, data: LongData, raw: pd.DataFrame) -> None:
        self._recent = data.frame.iloc[:0]
        if self.domains is not None:
            unknown = set(data.frame[SERIES_ID]) & {DOMAIN_PREFIX + d for d in self.domains.values()}
            if unknown:
                raise InvalidSeriesError(f"input series {sorted(unknown)} clash with domain total names")
        self._model = self._make_base().fit(self._with_totals(data))

    def _update_data(self, data: LongData, raw: pd.DataFrame) -> None:
        self._model.update(self._with_totals(data))

    def _predict_frame(self, horizon: int) -> pd.DataFrame:
        return self._model.predict(horizon)


def domain_totals(frame: pd.DataFrame, domains: Mapping[str, str]) -> pd.DataFrame:
    """Long rows `domain:<name>` = sum of the domain's servers per (metric, ts), only where all reported.

    `frame` has columns series_id, metric, ts, value; series not in `domains` are ignored.
    """
    members = frame.loc[frame[SERIES_ID].isin(domains)]
    members = members.assign(domain=members[SERIES_ID].map(domains))
    agg = members.groupby(["domain", METRIC, TS], sort=False)[VALUE].agg(["sum", "count"]).reset_index()
    size = pd.Series(domains).value_counts()
    complete = agg["count"].to_numpy() == agg["domain"].map(size).to_numpy()
    totals = pd.DataFrame(
        {
            SERIES_ID: DOMAIN_PREFIX + agg["domain"].astype(str),
            METRIC: agg[METRIC].to_numpy(),
            TS: agg[TS].to_numpy(),
            VALUE: agg["sum"].to_numpy(dtype=float),
        }
    )
    return totals.loc[complete].reset_index(drop=True)


def exceedance_probability(
    forecast: pd.DataFrame, budget: float | ArrayLike, levels: Sequence[float] | None = None
) -> np.ndarray:
    """P(X > budget) for each ForecastFrame row, from its quantiles (interpolated CDF, exponential tails).

    `budget` is one number or one per row. Non-increasing in the budget for every row.
    """
    lv = tuple(levels) if levels is not None else quantile_levels_of(forecast)
    if len(lv) < 2:
        raise InvalidConfigError("need at least two quantile levels to interpolate a CDF")
    q = np.sort(forecast[quantile_columns(lv)].to_numpy(dtype=float), axis=1)
    return exceedance_from_quantiles(q, lv, budget)


def exceedance_from_quantiles(q: ArrayLike, levels: Sequence[float], budget: float | ArrayLike) -> np.ndarray:
    """P(X > budget) per row of a (n, K) quantile matrix with increasing `levels` (see module docstring)."""
    qa = np.asarray(q, dtype=float)
    tau = np.asarray(levels, dtype=float)
    n, k = qa.shape
    b = np.broadcast_to(np.asarray(budget, dtype=float), (n,))
    rows = np.arange(n)
    below = (qa <= b[:, None]).sum(axis=1)  # knots at or below the budget
    cdf = np.empty(n)
    inner = (below > 0) & (below < k)
    i = np.where(inner, below - 1, 0)
    lo, hi = qa[rows, i], qa[rows, np.minimum(i + 1, k - 1)]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        frac = np.where(hi > lo, (b - lo) / (hi - lo), 0.0)
        cdf[inner] = (tau[i] + (tau[np.minimum(i + 1, k - 1)] - tau[i]) * frac)[inner]
        # lower tail: F(b) = tau_0 * exp(-(q_0 - b) / theta_lo)
        theta_lo = (qa[:, 1] - qa[:, 0]) / np.log(tau[1] / tau[0])
        low = below == 0
        cdf[low] = np.where(theta_lo > 0, tau[0] * np.exp(-(qa[:, 0] - b) / theta_lo), 0.0)[low]
        # upper tail: 1 - F(b) = (1 - tau_K) * exp(-(b - q_K) / theta_hi)
        theta_hi = (qa[:, -1] - qa[:, -2]) / np.log((1.0 - tau[-2]) / (1.0 - tau[-1]))
        top = below == k
        gap = b - qa[:, -1]
        tail = np.where(
            theta_hi > 0, (1.0 - tau[-1]) * np.exp(-gap / theta_hi), np.where(gap > 0, 0.0, 1.0 - tau[-1])
        )
        cdf[top] = 1.0 - tail[top]
    return np.clip(1.0 - cdf, 0.0, 1.0)


def window_exceedance(forecast: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Per (series, metric, cutoff): bounds on P(any step of the forecast window exceeds `budget`).

    Steps are dependent and only their marginals are known, so the joint risk lies between the largest
    step probability (`p_max`, steps perfectly dependent) and the union bound (`p_union`).
    """
    p = exceedance_probability(forecast, budget)
    frame = forecast[["series", "metric", "cutoff"]].assign(p=p)
    g = frame.groupby(["series", "metric", "cutoff"], sort=False)["p"]
    out = pd.DataFrame({"p_max": g.max(), "p_union": g.sum().clip(upper=1.0)}).reset_index()
    return out
