"""Calibration that cannot hurt the centre: conformal wrappers and `SideScaler` keep the median, stay
bounded under adversarial data and respect a non-negative unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecasting.backtest import backtest
from forecasting.calibration import SideScaler, calibration_strength, centre_of, keep_centre
from forecasting.conformal import AdaptiveConformalForecaster, ConformalForecaster
from forecasting.ensemble import row_crps
from forecasting.lightgbm_quantile import LightGBMQuantileForecaster
from forecasting.types import DEFAULT_QUANTILES, quantile_columns, validate_forecast_frame
from tests.forecasting.conftest import FAST_CONFIG, seasonal_frame

LGB = {**FAST_CONFIG["lightgbm"], "max_horizon": 4}
WRAPPERS = (ConformalForecaster, AdaptiveConformalForecaster)


def _median(frame: pd.DataFrame) -> np.ndarray:
    return frame.sort_values(["series", "horizon"])["q0.5"].to_numpy()


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_every_wrapper_keeps_the_base_median(wrapper: type[ConformalForecaster]) -> None:
    frame = seasonal_frame(n_series=3, n=24 * 10, seed=2)
    cut = frame["ts"].max() - pd.Timedelta(hours=6)
    early, late = frame[frame["ts"] <= cut], frame[frame["ts"] > cut]
    base = LightGBMQuantileForecaster(**LGB).fit(early)
    wrapped = wrapper("lightgbm", base_config=LGB, horizon=4, calibration_steps=6).fit(early)
    assert np.array_equal(_median(wrapped.predict(4)), _median(base.predict(4)))
    for part in (late.iloc[:3], late.iloc[3:]):  # ACI adapts its levels here; the centre stays put
        base.update(part)
        wrapped.update(part)
        out = wrapped.predict(4)
        validate_forecast_frame(out)
        assert np.array_equal(_median(out), _median(base.predict(4)))


def test_keep_centre_never_moves_the_median_or_crosses() -> None:
    rng = np.random.default_rng(0)
    q = np.sort(rng.normal(size=(200, 9)), axis=1)
    messy = q + rng.normal(0, 2.0, size=q.shape)  # corrections that cross each other and the median
    out = keep_centre(messy, DEFAULT_QUANTILES, q[:, 4])
    assert np.array_equal(out[:, 4], q[:, 4])
    assert (np.diff(out, axis=1) >= 0).all()


def _adversarial(n: int = 24 * 16, seed: int = 3) -> pd.DataFrame:
    """Seasonal series that jump to ten times their level and spike wildly in the last quarter."""
    frame = seasonal_frame(n_series=2, n=n, seed=seed)
    pos = frame.groupby("series_id").cumcount().to_numpy()
    late = pos >= 0.75 * n
    frame.loc[late, "value"] = frame.loc[late, "value"] * 10.0
    burst = late & (pos % 5 == 0)
    frame.loc[burst, "value"] = (
        frame.loc[burst, "value"] * 50.0 * np.random.default_rng(seed).random(int(burst.sum()))
    )
    return frame


def test_level_shift_and_outlier_burst_cannot_make_aci_intervals_infinite() -> None:
    frame = _adversarial()
    split = frame["ts"].min() + (frame["ts"].max() - frame["ts"].min()) * 0.6
    model = AdaptiveConformalForecaster(
        "lightgbm", base_config=LGB, horizon=4, calibration_steps=8, gamma=0.2
    ).fit(frame[frame["ts"] <= split])
    rest = frame[frame["ts"] > split].sort_values("ts")
    for ts in rest["ts"].unique()[::2]:
        model.update(rest[(rest["ts"] > ts - pd.Timedelta(hours=2)) & (rest["ts"] <= ts)])
        out = model.predict(4)
        base = model.model.predict(4)
        q, qb = out[quantile_columns()].to_numpy(), base[quantile_columns()].to_numpy()
        assert np.isfinite(q).all()
        width, base_width = q[:, -1] - q[:, 0], qb[:, -1] - qb[:, 0]
        # each side moves by at most correction_cap units of the base interval width
        assert (width <= base_width * (1 + 2 * model.correction_cap) + 1e-6).all()
    assert model.correction_cap < 1e3
    nominal = model._nominal_alpha()
    for sid in ("s0", "s1"):
        alpha = model.alpha(sid)
        assert (alpha >= nominal / model.alpha_ratio - 1e-12).all()
        assert (alpha <= np.minimum(nominal * model.alpha_ratio, 1.0) + 1e-12).all()


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_wrapper_crps_is_not_worse_than_the_base(wrapper: type[ConformalForecaster]) -> None:
    frame = seasonal_frame(n_series=4, n=24 * 16, noise=1.5, seed=8)
    base = backtest(LightGBMQuantileForecaster(**LGB), frame, 4, step=3)
    model = wrapper("lightgbm", base_config=LGB, horizon=4, calibration_steps=12)
    wrapped = backtest(model, frame, 4, step=3)
    assert wrapped.metrics["crps"] <= 1.05 * base.metrics["crps"]
    assert wrapped.metrics["mae"] == pytest.approx(base.metrics["mae"], rel=1e-9)


def test_a_non_negative_unit_gets_no_negative_quantile() -> None:
    rng = np.random.default_rng(4)
    ts = pd.date_range("2024-01-01", periods=24 * 12, freq="1h", tz="UTC")
    counts = pd.DataFrame({"series_id": "requests", "ts": ts, "value": rng.poisson(0.7, len(ts))})
    raw = ConformalForecaster("seasonal_naive", horizon=4, calibration_steps=20, nonnegative=False)
    assert (raw.fit(counts).predict(4)[quantile_columns()].to_numpy() < 0).any()  # the base alone goes < 0
    for wrapper in WRAPPERS:
        out = wrapper("seasonal_naive", horizon=4, calibration_steps=20).fit(counts).predict(4)
        assert (out[quantile_columns()].to_numpy() >= 0).all()
        assert (out["mean"] >= 0).all()
    signed = counts.assign(value=counts["value"] - 1.0)  # a signed unit keeps its negative quantiles
    out = ConformalForecaster("seasonal_naive", horizon=4, calibration_steps=20).fit(signed).predict(4)
    assert (out[quantile_columns()].to_numpy() < 0).any()


def test_side_scaler_calibrates_too_narrow_quantiles_without_moving_the_median() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    centre = rng.normal(0, 3, n)
    y = centre + rng.normal(0, 1, n)
    q = centre[:, None] + 0.3 * stats.norm.ppf(DEFAULT_QUANTILES)[None, :]  # 3.3x too narrow
    step = rng.integers(1, 4, n)
    floor = np.full(n, 1e-3)
    scaler = SideScaler(DEFAULT_QUANTILES).fit(y[:2000], q[:2000], step[:2000], floor[:2000])
    out = scaler.apply(q[2000:], step[2000:], floor[2000:])
    assert np.array_equal(centre_of(out, DEFAULT_QUANTILES), centre_of(q[2000:], DEFAULT_QUANTILES))
    hit = (y[2000:, None] <= out).mean(axis=0)
    assert np.allclose(hit, DEFAULT_QUANTILES, atol=0.03)
    # adversarial residuals (a huge outlier burst) still give bounded factors
    wild = SideScaler(DEFAULT_QUANTILES).fit(y[:200] * 1e6, q[:200], step[:200], floor[:200])
    assert np.isfinite(wild.factors).all() and wild.factors.max() <= wild.bounds[1]


def _normal_quantiles(centre: np.ndarray, sd: float) -> np.ndarray:
    return centre[:, None] + sd * stats.norm.ppf(DEFAULT_QUANTILES)[None, :]


def test_calibration_is_applied_where_it_carries_over_and_dropped_where_it_does_not() -> None:
    rng = np.random.default_rng(6)
    n = 2000
    centre = rng.normal(0, 3, n)
    step, floor, ones = rng.integers(1, 4, n), np.full(n, 1e-3), np.ones(n)
    late = np.arange(n) >= n // 2
    q = _normal_quantiles(centre, 1.0)
    # the base is 3x too narrow throughout: the correction learnt early holds later, so all of it is kept
    steady = centre + rng.normal(0, 3, n)
    strength, tried = calibration_strength(DEFAULT_QUANTILES, steady, q, step, floor, late, ones, row_crps)
    assert strength == 1.0 and tried["1"] < tried["0"]
    # calm early (residuals a third of the base's width), as wide as the base later: narrowing would hurt
    shifting = centre + rng.normal(0, 1, n) * np.where(late, 1.0, 1 / 3)
    strength, tried = calibration_strength(DEFAULT_QUANTILES, shifting, q, step, floor, late, ones, row_crps)
    assert strength == 0.0 and tried["0"] < tried["1"]
