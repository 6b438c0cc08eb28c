"""Seeded synthetic data and fast model configurations shared by the forecasting tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecasting.base import Forecaster, available_models, create_forecaster

START = pd.Timestamp("2024-01-01", tz="UTC")

_FAST_LGB: dict[str, Any] = {
    "n_estimators": 15,
    "max_train_rows": 2000,
    "num_leaves": 8,
    "min_data_in_leaf": 10,
    "num_threads": 1,  # OpenMP threads spin badly when the 2-core test machine is busy
}
_FAST_DEEP: dict[str, Any] = {
    "max_horizon": 8,
    "max_encoder_length": 24,
    "hidden_size": 8,
    "batch_size": 32,
    "max_epochs": 2,
    "limit_train_batches": 8,
}
FAST_CONFIG: dict[str, dict[str, Any]] = {
    "lightgbm": {**_FAST_LGB, "max_horizon": 8},
    "lightgbm_conformal": {"base_config": _FAST_LGB, "horizon": 8, "calibration_steps": 4},
    "lightgbm_aci": {"base_config": _FAST_LGB, "horizon": 8, "calibration_steps": 4},
    "auto": {
        "horizon": 8,
        "candidate_config": {"lightgbm": _FAST_LGB},
        "validation_points": 16,
        "rounds": 5,
    },
    "autoets": {"fit_window": 200},
    "autotheta": {"fit_window": 200},
    "tft": {**_FAST_DEEP, "attention_head_size": 1, "hidden_continuous_size": 4},
    "deepar": {**_FAST_DEEP, "rnn_layers": 1, "n_samples": 50},
}
"""Small configurations so the suite runs in seconds; models not listed use their defaults."""


def seasonal_frame(
    n_series: int = 3,
    n: int = 24 * 12,
    period: int = 24,
    freq: str = "1h",
    noise: float = 1.0,
    trend: float = 0.0,
    seed: int = 0,
    start: pd.Timestamp = START,
) -> pd.DataFrame:
    """Long frame of sinusoidal series with Gaussian noise: level 20+10i, amplitude 5, optional trend."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq=freq)
    t = np.arange(n)
    parts = []
    for i in range(n_series):
        y = 20 + 10 * i + 5 * np.sin(2 * np.pi * t / period + i) + trend * t + rng.normal(0, noise, n)
        parts.append(pd.DataFrame({"series_id": f"s{i}", "ts": ts, "value": y}))
    return pd.concat(parts, ignore_index=True)


def make_model(name: str, **overrides: Any) -> Forecaster:
    """Registered model with its fast test configuration."""
    return create_forecaster(name, **{**FAST_CONFIG.get(name, {}), **overrides})


@pytest.fixture(params=available_models())
def model_name(request: pytest.FixtureRequest) -> str:
    """Every registered forecaster, one test instance each."""
    return str(request.param)


@pytest.fixture
def frame() -> pd.DataFrame:
    """Three hourly series, twelve days."""
    return seasonal_frame()
