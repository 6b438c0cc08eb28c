"""The interference members on series whose truth is known: the rolling median's interval covers what it
claims on stationary noise, and the validated choice gives a random walk to persistence and white noise
to the rolling median (a noisy level is best forecast by a robust mean, a wandering one by its last value)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.interference import InterferenceForecaster
from forecasting.interference_members import RollingMedianForecaster, ValidatedChoice
from forecasting.types import InvalidConfigError

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _frame(values: dict[str, np.ndarray]) -> pd.DataFrame:
    parts = [
        pd.DataFrame({"series_id": sid, "ts": T0 + pd.to_timedelta(np.arange(len(v)), unit="h"), "value": v})
        for sid, v in values.items()
    ]
    return pd.concat(parts, ignore_index=True)


def test_rolling_median_interval_covers_fresh_noise_at_its_nominal_rate() -> None:
    rng = np.random.default_rng(0)
    hits, n = 0, 0
    for seed in range(40):
        series = 0.1 + rng.normal(0, 0.02, 400)
        model = RollingMedianForecaster(window=24, spread_window=168, freq="1h").fit(_frame({"s": series}))
        out = model.predict(3)
        fresh = 0.1 + np.random.default_rng(1000 + seed).normal(0, 0.02, 3)
        hits += int(((out["q0.1"].to_numpy() <= fresh) & (fresh <= out["q0.9"].to_numpy())).sum())
        n += 3
        assert abs(out["q0.5"].iloc[0] - 0.1) < 0.015
    assert 0.7 <= hits / n <= 0.9


def test_rolling_median_follows_a_level_shift_after_its_window() -> None:
    series = np.r_[np.zeros(200), np.full(30, 0.4)]
    out = RollingMedianForecaster(window=24, freq="1h").fit(_frame({"s": series})).predict(1)
    assert out["q0.5"].iloc[0] == pytest.approx(0.4)


def test_choice_gives_a_random_walk_to_persistence_and_noise_to_the_rolling_median() -> None:
    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(0, 0.05, 900))
    noise = rng.normal(0, 0.05, 900)
    model = ValidatedChoice(members=("persistence", "rolling_median"), horizon=3, freq="1h")
    model.fit(_frame({"walk": walk, "noise": noise}))
    assert model.choice == {("walk", "value"): "persistence", ("noise", "value"): "rolling_median"}
    described = model.describe()
    assert described["series_weights"]["walk"] == {"persistence": 1.0}
    assert set(described["validation"]["scores"]) == {"persistence", "rolling_median"}
    out = model.predict(3)
    assert len(out) == 6 and out.groupby("series").size().to_dict() == {"noise": 3, "walk": 3}
    assert out.loc[out["series"] == "walk", "q0.5"].iloc[0] == pytest.approx(walk[-1], abs=0.01)


def test_choice_with_too_little_history_uses_the_first_member_and_says_why() -> None:
    model = ValidatedChoice(members=("rolling_median", "persistence"), horizon=3, freq="1h")
    model.fit(_frame({"s": np.linspace(0, 1, 50)}))
    assert model.choice == {} and "validation" in model.describe()["skipped"]
    assert len(model.predict(2)) == 2


def test_choice_rejects_unknown_members() -> None:
    with pytest.raises(InvalidConfigError, match="members must be a non-empty subset"):
        ValidatedChoice(members=("prophet",))
    with pytest.raises(InvalidConfigError, match="not among members"):
        ValidatedChoice(members=("persistence",), member_config={"lightgbm": {}})


def test_interference_forecaster_takes_the_members_by_name_and_describes_them() -> None:
    rng = np.random.default_rng(4)
    perf = 100 * (1 - np.clip(rng.normal(0.1, 0.02, 600), 0, 1))
    model = InterferenceForecaster(
        "choice", base_config={"members": ("persistence", "rolling_median"), "horizon": 3}, freq="1h"
    ).fit(_frame({"vm": perf}))
    assert model.describe()["series_weights"]["vm"] == {"rolling_median": 1.0}
    median = model.predict(1)["q0.5"].iloc[0]
    assert 0.0 < median < 0.15  # degradation against the 95th-percentile baseline
