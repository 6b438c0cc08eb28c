"""The seasonal-window forecaster: a recurring burst whose step jitters shows up as a probability around
its time of day, a level shift carries over, and before a season it is the naive forecast."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecasting.base import create_forecaster
from forecasting.seasonal_naive import SeasonalNaiveForecaster
from forecasting.seasonal_window import SeasonalWindowForecaster
from forecasting.types import InvalidConfigError

DAY = 288  # 5-minute steps


def daily_burst(days: int, seed: int = 0) -> pd.DataFrame:
    """Load 1 with a burst of 10 for one step each day at 03:00 plus or minus up to 3 steps."""
    rng = np.random.default_rng(seed)
    values = np.ones(days * DAY)
    for d in range(days):
        values[d * DAY + 36 + int(rng.integers(-3, 4))] = 10.0
    ts = pd.date_range("2024-01-01", periods=len(values), freq="5min", tz="UTC")
    return pd.DataFrame({"series_id": "a", "ts": ts, "value": values})


def test_a_jittered_daily_burst_is_a_probability_around_its_time_and_nowhere_else() -> None:
    frame = daily_burst(8)
    cutoff = 7 * DAY + 30  # 02:30 on day 8: the burst is due within the next 6 to 12 steps
    model = SeasonalWindowForecaster(freq="5min").fit(frame.iloc[: cutoff + 1])
    near = model.predict(12)
    assert near["q0.95"].iloc[5:10].max() >= 5.0  # some days' bursts fall in each step's neighbourhood
    assert (near["q0.5"] == 1.0).all()  # but the typical value is still the level
    noon = SeasonalWindowForecaster(freq="5min").fit(frame.iloc[: 7 * DAY + 144])
    assert (noon.predict(12)["q0.99"] == 1.0).all()
    # seasonal naive repeats yesterday's single step: the band misses the burst on a day it moved
    naive = SeasonalNaiveForecaster(freq="5min", season_length=DAY).fit(frame.iloc[: cutoff + 1])
    naive_hit = naive.predict(12)["q0.95"].to_numpy() >= 5.0
    window_hit = near["q0.95"].to_numpy() >= 5.0
    assert window_hit.sum() > naive_hit.sum()


def test_a_level_shift_carries_over_and_a_spike_does_not() -> None:
    frame = daily_burst(3)
    frame.loc[frame.index[-12:], "value"] = 3.0  # the last hour moved from 1 to 3
    out = SeasonalWindowForecaster(freq="5min").fit(frame).predict(3)
    assert np.allclose(out["q0.5"], 3.0)
    spiky = daily_burst(3)
    spiky.loc[spiky.index[-1], "value"] = 50.0  # one outlier now: the median level ignores it
    out = SeasonalWindowForecaster(freq="5min").fit(spiky).predict(3)
    assert np.allclose(out["q0.5"], 1.0)


def test_before_one_season_it_continues_the_recent_changes() -> None:
    ts = pd.date_range("2024-01-01", periods=60, freq="60s", tz="UTC")
    ramp = pd.DataFrame({"series_id": "a", "ts": ts, "value": np.arange(60.0)})
    out = create_forecaster("seasonal_window", freq="60s").fit(ramp).predict(3)
    assert out["q0.5"].tolist() == [60.0, 61.0, 62.0]
    assert out["mean"].tolist() == [60.0, 61.0, 62.0]


def test_before_one_season_only_the_newest_changes_of_each_series_count() -> None:
    """The naive fallback reads the newest `seasons * (2 * half_width + 1)` h-step changes (49 by
    default) of each series and nothing from before a younger series' first observation."""
    ts = pd.date_range("2024-01-01", periods=120, freq="60s", tz="UTC")
    old = np.r_[np.arange(60.0) * 5.0, 300.0 + np.arange(60.0)]  # steps of 5, then 60 steps of 1
    young = 10.0 + np.arange(8.0)  # 8 observations, steps of 1, starting late
    frame = pd.concat(
        [
            pd.DataFrame({"series_id": "old", "ts": ts, "value": old}),
            pd.DataFrame({"series_id": "young", "ts": ts[-8:], "value": young}),
        ]
    )
    out = create_forecaster("seasonal_window", freq="60s").fit(frame).predict(2)
    for series, last in (("old", old[-1]), ("young", young[-1])):
        rows = out[out["series"] == series]
        assert rows["q0.01"].tolist() == rows["q0.99"].tolist() == [last + 1.0, last + 2.0]


def test_a_short_season_never_reads_past_the_last_observation() -> None:
    """With a season of 4 steps and a half-width of 3, yesterday's neighbourhood of step h reaches
    beyond now: those positions are dropped, so the forecast depends only on the past."""
    ts = pd.date_range("2024-01-01", periods=40, freq="60s", tz="UTC")
    values = np.tile([1.0, 2.0, 3.0, 4.0], 10)
    frame = pd.DataFrame({"series_id": "a", "ts": ts, "value": values})
    model = SeasonalWindowForecaster(season_length=4, half_width=3, seasons=2, freq="60s")
    out = model.fit(frame).predict(3)
    assert np.isfinite(out.filter(like="q0.").to_numpy()).all()
    assert out["q0.01"].min() >= 1.0 and out["q0.99"].max() <= 4.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"season_length": 1}, "season_length"),
        ({"seasons": 0}, "seasons"),
        ({"half_width": -1}, "half_width"),
        ({"level_window": 0}, "level_window"),
    ],
)
def test_bad_configuration_says_which_setting(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        SeasonalWindowForecaster(**kwargs)
