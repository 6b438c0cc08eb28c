"""One contract, every registered forecaster (docs/architecture.md §6.6)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.base import DEFAULT_MODEL, Forecaster, available_models, create_forecaster
from forecasting.seasonal_naive import SeasonalNaiveForecaster
from forecasting.types import (
    DEFAULT_QUANTILES,
    ForecastingError,
    InvalidConfigError,
    NotFittedError,
    UnknownModelError,
    forecast_columns,
    quantile_columns,
    validate_forecast_frame,
)
from forecasting.vpa_histogram import VpaHistogramForecaster
from tests.forecasting.conftest import FAST_CONFIG, make_model, seasonal_frame

H = 6


def test_registry_lists_the_builtin_models() -> None:
    names = available_models()
    for expected in ("seasonal_naive", "vpa_histogram", "fft_period", "lightgbm", "lightgbm_conformal"):
        assert expected in names
    assert {"tft", "deepar"} <= set(names)  # deep models (forecasting.deep)
    assert DEFAULT_MODEL in names
    with pytest.raises(UnknownModelError, match="unknown model 'nope'; available: "):
        create_forecaster("nope")


def test_predict_update_save_before_fit_raise(model_name: str, tmp_path: Path) -> None:
    model = make_model(model_name)
    assert not model.is_fitted
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(H)
    with pytest.raises(NotFittedError):
        model.update(seasonal_frame(n=10))
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "m.pkl")


def test_forecast_frame_contract(model_name: str, frame: pd.DataFrame) -> None:
    model = make_model(model_name).fit(frame)
    out = model.predict(H)
    assert list(out.columns) == forecast_columns(DEFAULT_QUANTILES)
    validate_forecast_frame(out)
    assert len(out) == 3 * H
    last = frame.groupby("series_id")["ts"].max()
    for sid, g in out.groupby("series"):
        assert (g["cutoff"] == last[sid]).all()
        assert g["horizon"].tolist() == list(range(1, H + 1))
        expected = pd.DatetimeIndex([last[sid] + pd.Timedelta(hours=h) for h in range(1, H + 1)])
        assert (pd.DatetimeIndex(g["timestamp"]) == expected).all()
    assert set(out["metric"]) == {"value"}
    q = out[quantile_columns()].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all(), "quantiles cross"
    assert np.isfinite(out["mean"]).all()
    with pytest.raises(InvalidConfigError):
        model.predict(0)


def test_save_load_round_trip(model_name: str, frame: pd.DataFrame, tmp_path: Path) -> None:
    model = make_model(model_name).fit(frame)
    before = model.predict(H)
    path = model.save(tmp_path / "sub" / "model.pkl")
    loaded = Forecaster.load(path)
    assert type(loaded) is type(model)
    pd.testing.assert_frame_equal(loaded.predict(H), before)
    other = VpaHistogramForecaster if isinstance(model, SeasonalNaiveForecaster) else SeasonalNaiveForecaster
    with pytest.raises(ForecastingError, match="not a"):
        other.load(path)
    (tmp_path / "junk.pkl").write_bytes(pickle.dumps({"hello": 1}))
    with pytest.raises(ForecastingError, match="not a Foresight forecaster artifact"):
        Forecaster.load(tmp_path / "junk.pkl")


def test_update_moves_cutoff_without_refit(model_name: str) -> None:
    full = seasonal_frame(n=24 * 13)
    cut = full["ts"].min() + pd.Timedelta(hours=24 * 12 - 1)
    model = make_model(model_name).fit(full[full["ts"] <= cut])
    model.update(full[(full["ts"] > cut) & (full["ts"] <= cut + pd.Timedelta(hours=5))])
    out = model.predict(H)
    assert (out["cutoff"] == cut + pd.Timedelta(hours=5)).all()
    validate_forecast_frame(out)
    # a series first seen in update() is forecast too
    newcomer = seasonal_frame(n_series=1, n=24 * 3, seed=9).assign(series_id="new")
    model.update(newcomer)
    assert "new" in set(model.predict(H)["series"])


def test_custom_quantile_levels(model_name: str, frame: pd.DataFrame) -> None:
    levels = (0.1, 0.5, 0.9)
    model = make_model(model_name, quantiles=levels).fit(frame)
    out = model.predict(3)
    assert list(out.columns) == forecast_columns(levels)
    assert list(out.columns)[-3:] == ["q0.1", "q0.5", "q0.9"]
    validate_forecast_frame(out, levels)


def test_get_params_recreates_the_model(model_name: str) -> None:
    model = make_model(model_name)
    params = model.get_params()
    assert isinstance(params, dict) and "quantiles" in params
    assert type(model)(**{k: v for k, v in params.items()}).get_params() == params


def test_bad_input_gives_clear_errors_or_valid_forecasts(model_name: str) -> None:
    constant = seasonal_frame(n_series=2).assign(value=7.0)
    out = make_model(model_name).fit(constant).predict(3)
    validate_forecast_frame(out)
    assert np.allclose(out[quantile_columns()].to_numpy(), 7.0, atol=1e-6)

    gappy = seasonal_frame(n_series=2)
    gappy.loc[gappy.index % 7 == 3, "value"] = np.nan  # NaN = missing observation
    gappy = gappy.drop(index=gappy.index[50:70])  # a gap in the timestamps
    validate_forecast_frame(make_model(model_name).fit(gappy).predict(3))

    tiny = seasonal_frame(n_series=1, n=3)
    try:
        out = make_model(model_name, freq="1h").fit(tiny).predict(2)
    except ForecastingError as exc:
        assert "needs at least" in str(exc) or "history" in str(exc)
    else:
        validate_forecast_frame(out)

    with pytest.raises(ForecastingError, match="missing column"):
        make_model(model_name).fit(constant.drop(columns=["value"]))
    with pytest.raises(ForecastingError, match="infinite"):
        make_model(model_name).fit(constant.assign(value=np.inf))


def test_fast_configs_only_name_registered_models() -> None:
    assert set(FAST_CONFIG) <= set(available_models())


def test_several_metrics_per_entity_and_target_selection(model_name: str) -> None:
    base = seasonal_frame(n_series=2)
    frame = pd.concat(
        [base.assign(metric="requests"), base.assign(metric="cpu", value=base["value"] / 10 + 1)],
        ignore_index=True,
    )
    out = make_model(model_name).fit(frame).predict(3)
    validate_forecast_frame(out)
    assert set(zip(out["series"], out["metric"], strict=True)) == {
        ("s0", "requests"), ("s0", "cpu"), ("s1", "requests"), ("s1", "cpu"),
    }  # fmt: skip
    only_cpu = make_model(model_name, target_metrics=["cpu"]).fit(frame).predict(3)
    assert set(only_cpu["metric"]) == {"cpu"}
    with pytest.raises(ForecastingError, match="no target metrics"):
        make_model(model_name, target_metrics=["gpu"]).fit(frame)
