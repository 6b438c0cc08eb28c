"""A forecast made at cutoff t never reads data after t: poisoning the future changes nothing before it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import backtest
from tests.forecasting.conftest import make_model, seasonal_frame

H = 4


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    frame = seasonal_frame(n_series=2, n=24 * 10)
    cpu = frame.assign(metric="cpu")
    mem = frame.assign(metric="mem", value=frame["value"] * 2 + 1)  # a second indicator of the same entity
    return pd.concat([cpu, mem], ignore_index=True)


def test_backtest_forecasts_ignore_everything_after_their_cutoff(
    model_name: str, clean: pd.DataFrame
) -> None:
    first = backtest(make_model(model_name), clean, H, test_fraction=0.2, step=3)
    cutoffs = np.sort(first.forecasts["cutoff"].unique())
    t = cutoffs[len(cutoffs) // 2]
    poisoned = clean.copy()
    after = poisoned["ts"] > t
    poisoned.loc[after, "value"] = 1e9 * (1 + np.arange(after.sum()) % 3)  # absurd values, same timestamps
    second = backtest(make_model(model_name), poisoned, H, test_fraction=0.2, step=3)
    keep_a = first.forecasts["cutoff"] <= t
    keep_b = second.forecasts["cutoff"] <= t
    assert keep_a.sum() > 0
    pd.testing.assert_frame_equal(
        first.forecasts.loc[keep_a].reset_index(drop=True),
        second.forecasts.loc[keep_b].reset_index(drop=True),
    )
    # and the poison did reach the later forecasts, so the comparison above had teeth
    late_a = first.forecasts.loc[~keep_a, "q0.5"].to_numpy()
    late_b = second.forecasts.loc[~keep_b, "q0.5"].to_numpy()
    assert not np.allclose(late_a, late_b)
