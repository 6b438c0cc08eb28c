"""On a real trace (NAB ELB request counts), a calibrated forecast makes the Bayesian policy's violation
rate match the ε it promises; the full multi-series run is `bench/scaling_chance.py`."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.backtest import backtest
from forecasting.base import create_forecaster
from policies.chance_check import check_chance_constraint
from tests.helpers import REPO_ROOT

TRACE = REPO_ROOT / "service" / "sample_data" / "nab" / "elb_request_count_8c0756.csv"


@pytest.fixture(scope="module")
def backtested() -> tuple[pd.DataFrame, pd.Series]:
    raw = pd.read_csv(TRACE)
    frame = pd.DataFrame(
        {"series_id": "elb", "ts": pd.to_datetime(raw["timestamp"], utc=True), "value": raw["value"]}
    )
    result = backtest(create_forecaster("seasonal_naive"), frame, horizon=1, test_fraction=0.2)
    assert 0.75 <= result.metrics["coverage_80"] <= 0.88  # the forecast is (roughly) calibrated
    return result.forecasts, frame.set_index("ts")["value"]


@pytest.mark.parametrize("epsilon", [0.05, 0.1])
def test_violation_rate_matches_epsilon(backtested: tuple[pd.DataFrame, pd.Series], epsilon: float) -> None:
    forecasts, actual = backtested
    check = check_chance_constraint(
        forecasts, actual, replica_capacity=float(actual.median()) / 4, epsilon=epsilon
    )
    assert check.windows > 700
    assert check.violation_rate <= epsilon + 2.5 * check.standard_error
    assert abs(check.violation_rate - check.stated_risk) <= 0.025  # the stated risk is honest
    assert check.mean_replicas < check.peak_replicas  # it follows the load instead of sizing for the peak
