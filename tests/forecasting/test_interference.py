"""Interference forecaster: degradation-ratio definition, the forecaster contract, and real-data accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecasting.base import Forecaster
from forecasting.interference import NEIGHBOUR_PREFIX, InterferenceForecaster, effective_capacity
from forecasting.interference_data import LOWER_IS_BETTER, default_model_config, evaluate, load_vm_noise
from forecasting.types import (
    InvalidConfigError,
    NotFittedError,
    forecast_columns,
    quantile_columns,
    validate_forecast_frame,
)
from tests.forecasting.conftest import seasonal_frame

DATA = Path(__file__).resolve().parents[1] / "data" / "azure_vm_noise_2024"
H = 3


def fast_model(**kw: Any) -> InterferenceForecaster:
    return InterferenceForecaster("lightgbm_conformal", base_config=default_model_config(H, fast=True), **kw)


@pytest.fixture(scope="module")
def vm_noise() -> tuple[pd.DataFrame, dict[str, str]]:
    return load_vm_noise(DATA)


def test_loader_reads_the_real_subset(vm_noise: tuple[pd.DataFrame, dict[str, str]]) -> None:
    frame, groups = vm_noise
    assert set(frame["series_id"]) == {"westus2/vm0", "westus2/vm1", "westus2/vm2"}
    assert frame["metric"].nunique() == 4
    assert set(groups.values()) == {"westus2"}
    assert (frame["ts"] == frame["ts"].dt.floor("1h")).all()


def test_degradation_uses_a_high_percentile_baseline_inverted_for_latency() -> None:
    ts = pd.date_range("2024-01-01", periods=100, freq="1h", tz="UTC")
    thr = np.linspace(50.0, 149.0, 100)  # throughput, higher is better
    lat = np.linspace(1.0, 2.0, 100)  # latency, lower is better
    frame = pd.concat(
        [
            pd.DataFrame({"series_id": "vm", "metric": "rps", "ts": ts, "value": thr}),
            pd.DataFrame({"series_id": "vm", "metric": "p_latency", "ts": ts, "value": lat}),
        ]
    )
    model = InterferenceForecaster("seasonal_naive", baseline_quantile=0.9).fit(frame)
    base = model.baselines
    assert base[("vm", "rps")] == pytest.approx(np.quantile(thr, 0.9))
    assert base[("vm", "p_latency")] == pytest.approx(np.quantile(1.0 / lat, 0.9))  # 'latency' in the name
    deg = model.degradation(frame).set_index(["metric", "ts"])["value"]
    assert deg[("rps", ts[0])] == pytest.approx(1.0 - 50.0 / np.quantile(thr, 0.9))
    assert deg[("p_latency", ts[-1])] == pytest.approx(1.0 - (1.0 / 2.0) / np.quantile(1.0 / lat, 0.9))
    assert (deg < 0).mean() == pytest.approx(0.1, abs=0.02)  # above the p90 baseline: kept, not clipped


def test_forecaster_contract() -> None:
    frame = seasonal_frame(n_series=3)
    model = fast_model()
    with pytest.raises(NotFittedError):
        model.predict(H)
    model.fit(frame)
    out = model.predict(H)
    validate_forecast_frame(out)
    assert list(out.columns) == forecast_columns()
    assert len(out) == 3 * H and set(out["metric"]) == {"value"}
    assert out["q0.5"].abs().max() < 1.0  # degradation ratios, not the raw level (20..45)
    with pytest.raises(InvalidConfigError):
        model.predict(0)
    # update moves the cutoff; a newcomer gets a baseline from its first batch and is forecast
    later = seasonal_frame(n_series=3, n=24 * 12 + 4).groupby("series_id").tail(4)
    model.update(later)
    assert (model.predict(H)["cutoff"] == later["ts"].max()).all()
    model.update(seasonal_frame(n_series=1, n=72, seed=5).assign(series_id="new"))
    assert "new" in set(model.predict(H)["series"])
    params = model.get_params()
    assert type(model)(**params).get_params() == params


def test_constant_performance_means_no_degradation_and_save_load(tmp_path: Path) -> None:
    frame = seasonal_frame(n_series=2).assign(value=7.0)
    model = InterferenceForecaster("seasonal_naive", quantiles=(0.1, 0.5, 0.9)).fit(frame)
    out = model.predict(2)
    assert np.allclose(out[quantile_columns((0.1, 0.5, 0.9))].to_numpy(), 0.0)
    loaded = Forecaster.load(model.save(tmp_path / "m.pkl"))
    pd.testing.assert_frame_equal(loaded.predict(2), out)


def test_neighbour_covariates_are_leave_one_out_group_means() -> None:
    ts = pd.date_range("2024-01-01", periods=50, freq="1h", tz="UTC")
    rng = np.random.default_rng(0)
    frame = pd.concat(
        [
            pd.DataFrame({"series_id": f"v{i}", "ts": ts, "value": 100 + rng.normal(0, 5, 50)})
            for i in range(3)
        ]
    )
    model = InterferenceForecaster("seasonal_naive", groups={"v0": "g", "v1": "g", "v2": "g"}).fit(frame)
    deg = model.degradation(frame).pivot(index="ts", columns="series_id", values="value")
    inner = model.model
    panel = inner._panel  # type: ignore[attr-defined]
    nb = panel.values[panel.index[("v0", NEIGHBOUR_PREFIX + "value")]]
    assert np.allclose(nb[-5:], ((deg["v1"] + deg["v2"]) / 2).to_numpy()[-5:])


def test_effective_capacity_mirrors_quantiles() -> None:
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    levels = (0.1, 0.5, 0.9)
    fc = pd.DataFrame(
        {"series": ["a"], "metric": ["m"], "cutoff": [ts], "timestamp": [ts + pd.Timedelta("1h")],
         "horizon": [1], "mean": [0.1], "q0.1": [0.0], "q0.5": [0.1], "q0.9": [0.3]}
    )  # fmt: skip
    cap = effective_capacity(fc, 100.0)
    assert cap[["q0.1", "q0.5", "q0.9"]].to_numpy().ravel() == pytest.approx([70.0, 90.0, 100.0])
    validate_forecast_frame(cap, levels)


def test_beats_naive_and_covers_80pct_on_held_out_real_data(
    vm_noise: tuple[pd.DataFrame, dict[str, str]],
) -> None:
    frame, groups = vm_noise
    result = evaluate(frame, groups, horizon=H, test_fraction=0.2, step=3, fast=True)
    model, last, median = result["interference_lgbm"], result["naive_last"], result["rolling_median"]
    assert model["n"] > 1000
    assert model["mae"] < 0.9 * last["mae"]  # clearly better than carrying the last ratio forward
    assert model["mae"] < 1.03 * median["mae"]  # at least as good as a 24-hour rolling median
    assert model["coverage_80"] == pytest.approx(0.80, abs=0.06)  # tolerance: ~1,500 dependent rows
    assert model["wql"] < median["wql"]
    assert LOWER_IS_BETTER[0] in {k.split(":", 1)[1] for k in model if k.startswith("mae:")}
