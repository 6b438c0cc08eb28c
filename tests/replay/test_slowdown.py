"""The replay's slowdown forecast (`replay.slowdown.SlowdownForecast`): silent without interference, the
earlier window rule before enough observations, and afterwards the interference members' own array code
with a per-workload choice that follows the data."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.interference_members import history_length, rolling_median_quantiles
from replay.slowdown import SlowdownForecast
from replay.traces import ReplayError

LEVELS = (0.1, 0.5, 0.9)


def _speeds(k: int, seed: int = 0) -> np.ndarray:
    """(k, 2) speeds: workload 0 is noise around a fixed slowdown, workload 1 a slow random walk."""
    rng = np.random.default_rng(seed)
    noise = np.clip(0.2 + rng.normal(0.0, 0.05, k), 0.0, 0.9)
    walk = np.clip(0.3 + np.cumsum(rng.normal(0.0, 0.02, k)), 0.0, 0.9)
    return 1.0 - np.column_stack([noise, walk])


def test_no_interference_forecasts_none_and_chooses_nothing() -> None:
    forecast = SlowdownForecast(3, 60.0, {})
    out = forecast.quantiles(np.ones((500, 3)), LEVELS, 5)
    assert out.shape == (3, 5, 3) and not out.any()
    assert forecast.chosen is None


def test_window_rule_before_enough_observations_and_as_the_window_model() -> None:
    speeds = _speeds(400)
    expected = np.quantile(1.0 - speeds[-12:], LEVELS, axis=0).T
    early = SlowdownForecast(2, 60.0, {"interference_min_observations": 1000}).quantiles(speeds, LEVELS, 4)
    window = SlowdownForecast(2, 60.0, {"interference_model": "window"}).quantiles(speeds, LEVELS, 4)
    for out in (early, window):
        assert out.shape == (2, 4, 3)
        np.testing.assert_allclose(out, np.repeat(expected[:, None, :], 4, axis=1))


def test_choice_uses_the_members_array_code_and_follows_the_data() -> None:
    speeds = _speeds(1500)
    forecast = SlowdownForecast(2, 60.0, {"interference_refit_every": 10_000})
    out = forecast.quantiles(speeds, LEVELS, 6)
    assert forecast.chosen is not None
    # stationary noise: the rolling median (index 1); a random walk: persistence (index 0)
    assert forecast.chosen.tolist() == [1, 0]
    for row, member in enumerate(forecast.chosen):
        window = forecast.windows[member]
        tail = (1.0 - speeds[-history_length(window, forecast.spread, 6) :, [row]]).T
        direct = rolling_median_quantiles(tail, window, forecast.spread, LEVELS, 6)
        np.testing.assert_allclose(out[row], np.clip(direct[0], 0.0, 0.99))
    assert (np.diff(out, axis=2) >= -1e-12).all()  # quantiles ordered
    # no refit before `refit_every` decisions: the choice stays even if the data changes
    chosen = forecast.chosen.copy()
    forecast.quantiles(speeds[:, ::-1], LEVELS, 6)
    assert forecast.chosen.tolist() == chosen.tolist()


@pytest.mark.parametrize(
    "cfg",
    [
        {"interference_model": "lstm"},
        {"interference_rolling_window": 0},
        {"interference_min_observations": 1},
    ],
)
def test_bad_configuration_is_refused(cfg: dict[str, object]) -> None:
    with pytest.raises(ReplayError):
        SlowdownForecast(2, 60.0, cfg)
