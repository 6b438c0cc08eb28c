"""Statistical behaviour on seeded synthetic data whose truth is known."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecasting.backtest import backtest
from forecasting.base import PanelForecaster
from forecasting.conformal import AdaptiveConformalForecaster, ConformalForecaster
from forecasting.lightgbm_quantile import LightGBMQuantileForecaster
from forecasting.seasonal_naive import SeasonalNaiveForecaster
from tests.forecasting.conftest import seasonal_frame


class NarrowOracle(PanelForecaster):
    """Knows the true mean of `seasonal_frame` series but claims intervals 10x too narrow (sigma = 1)."""

    name = "narrow_oracle"

    def __init__(self, *, shrink: float = 0.1, **kw: Any) -> None:
        super().__init__(**kw)
        self.shrink = shrink

    def _fit(self) -> None:
        pass

    def _predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        t = self._panel.last_pos(self._targets)[:, None] + np.arange(1, horizon + 1)[None, :]
        i = np.array([int(k[0][1:]) for k in self._targets])[:, None]
        mean = 20 + 10 * i + 5 * np.sin(2 * np.pi * t / 24 + i)
        z = stats.norm.ppf(self.quantiles) * self.shrink
        return mean, mean[:, :, None] + z[None, None, :]


def _shifted_noise(frame: pd.DataFrame, after: float, factor: float) -> pd.DataFrame:
    """Multiply the noise of every point after the `after` fraction of time by `factor`."""
    out = frame.copy()
    n = out.groupby("series_id").cumcount().to_numpy()
    t = n.astype(float)
    i = out["series_id"].str[1:].astype(int).to_numpy()
    mean = 20 + 10 * i + 5 * np.sin(2 * np.pi * t / 24 + i)
    late = n >= after * (n.max() + 1)
    out.loc[late, "value"] = mean[late] + factor * (out["value"].to_numpy()[late] - mean[late])
    return out


def test_split_conformal_brings_80pct_intervals_to_80pct_coverage() -> None:
    frame = seasonal_frame(n_series=10, n=24 * 40, noise=1.0, seed=11)
    raw = backtest(NarrowOracle(), frame, 4, test_fraction=0.2, step=2)
    assert raw.metrics["coverage_80"] < 0.2  # the base model is badly over-confident
    wrapped = ConformalForecaster(NarrowOracle(), horizon=4, calibration_steps=120)
    cal = backtest(wrapped, frame, 4, test_fraction=0.2, step=2)
    assert cal.metrics["coverage_80"] == pytest.approx(0.80, abs=0.04)
    assert cal.metrics["coverage_50"] == pytest.approx(0.50, abs=0.05)
    assert cal.metrics["coverage_95"] == pytest.approx(0.95, abs=0.03)
    # corrected half-width of the 80% interval is close to the true 1.2816 sigma
    width = (cal.forecasts["q0.9"] - cal.forecasts["q0.1"]).mean() / 2
    assert width == pytest.approx(stats.norm.ppf(0.9), rel=0.1)


def test_adaptive_conformal_recovers_coverage_after_a_variance_shift() -> None:
    frame = _shifted_noise(seasonal_frame(n_series=6, n=24 * 30, noise=1.0, seed=5), after=0.8, factor=2.5)
    split = backtest(ConformalForecaster(NarrowOracle(), horizon=3, calibration_steps=80), frame, 3)
    aci_model = AdaptiveConformalForecaster(NarrowOracle(), horizon=3, calibration_steps=80, gamma=0.02)
    aci = backtest(aci_model, frame, 3)
    assert split.metrics["coverage_80"] < 0.6  # calibrated on the calm regime, under-covers after the shift
    assert aci.metrics["coverage_80"] > split.metrics["coverage_80"] + 0.1
    assert aci.metrics["coverage_80"] == pytest.approx(0.8, abs=0.1)
    assert aci_model.alpha("s0")[1] < 0.2  # the 80% pair's working miscoverage moved below nominal


def test_lightgbm_beats_seasonal_naive_on_seasonal_series_with_trend() -> None:
    frame = seasonal_frame(n_series=8, n=24 * 20, trend=0.05, noise=1.0, seed=3)
    lgb_model = LightGBMQuantileForecaster(
        max_horizon=6, n_estimators=80, max_train_rows=20_000, num_threads=1
    )
    lgb = backtest(lgb_model, frame, 6, test_fraction=0.2, step=2)
    naive = backtest(SeasonalNaiveForecaster(), frame, 6, test_fraction=0.2, step=2)
    assert lgb.metrics["wql"] < 0.9 * naive.metrics["wql"]
    assert lgb.metrics["mase"] < naive.metrics["mase"]
    assert lgb.metrics["coverage_80"] == pytest.approx(0.8, abs=0.12)


def test_lightgbm_uses_a_leading_indicator_of_the_same_entity() -> None:
    """HARMONY's hierarchy: CPU follows business load 3 steps later, so load is worth knowing."""
    rng = np.random.default_rng(7)
    n, parts = 24 * 14, []
    for i in range(6):
        load = 100 + np.cumsum(rng.normal(0, 4, n + 3))  # unpredictable from its own past
        cpu = 0.5 * load[:-3] + rng.normal(0, 0.3, n)  # cpu[t] = 0.5 * load[t-3] + noise
        ts = pd.date_range("2024-03-01", periods=n, freq="1h", tz="UTC")
        parts.append(pd.DataFrame({"series_id": f"e{i}", "ts": ts, "value": cpu, "load": load[3:]}))
    frame = pd.concat(parts, ignore_index=True)  # `load` is a covariate column, only `value` is forecast
    cfg: dict[str, Any] = {"max_horizon": 3, "n_estimators": 60, "max_train_rows": 15_000, "num_threads": 1}
    with_cov = backtest(LightGBMQuantileForecaster(**cfg), frame, 3, step=2)
    without = backtest(LightGBMQuantileForecaster(covariates=False, **cfg), frame, 3, step=2)
    assert set(with_cov.forecasts["metric"]) == {"value"}
    assert with_cov.metrics["wql"] < 0.6 * without.metrics["wql"]


@pytest.mark.parametrize("score_scale", ["interval", "series"])
def test_conformal_score_units_and_refit(score_scale: str) -> None:
    frame = seasonal_frame(n_series=6, n=24 * 30, noise=1.0, seed=4)
    model = ConformalForecaster(
        NarrowOracle(), horizon=3, calibration_steps=100, score_scale=score_scale, refit=True
    )
    result = backtest(model, frame, 3, step=2)
    assert result.metrics["coverage_80"] == pytest.approx(0.8, abs=0.06)
