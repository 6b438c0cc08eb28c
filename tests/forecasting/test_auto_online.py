"""`auto` re-chooses its weights on the newest scored forecasts as data arrives: a series that changes
regime after the fit moves its weight to the member that forecasts the new regime; frozen weights (the
switch off) do not move; the evidence keeps a bounded, newest-first window."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecasting.auto import AutoForecaster
from forecasting.evidence import Evidence, PendingForecasts
from tests.forecasting.conftest import START

PERIOD = 24


def _frame(values: np.ndarray, start: int = 0) -> pd.DataFrame:
    ts = pd.date_range(START, periods=start + values.shape[1], freq="1h")[start:]
    return pd.concat(
        [pd.DataFrame({"series_id": f"s{i}", "ts": ts, "value": row}) for i, row in enumerate(values)],
        ignore_index=True,
    )


def _regime_change(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Two weeks of an exact daily profile (seasonal naive is right), then a random walk that forgets
    the profile (the last value is the best forecast)."""
    rng = np.random.default_rng(seed)
    shape = rng.uniform(0, 20, PERIOD)
    before = np.stack([np.tile(shape, 14) + rng.normal(0, 0.05, PERIOD * 14) for _ in range(2)])
    walk = before[:, -1:] + np.cumsum(rng.normal(0, 3.0, (2, PERIOD * 6)), axis=1)
    return before, walk


def _walk(model: AutoForecaster, after: np.ndarray, first: int, every: int = 3) -> None:
    """Forecast, then observe `every` steps, through `after` (as a user's stream would)."""
    for lo in range(0, after.shape[1], every):
        model.predict(6)
        model.update(_frame(after[:, lo : lo + every], first + lo))


def _auto(**kw: Any) -> AutoForecaster:
    return AutoForecaster(
        horizon=6, validation_points=48, rounds=10, candidates=["naive", "seasonal_naive"], **kw
    )


def _naive_weight(model: AutoForecaster) -> float:
    weights = model.describe()["series_weights"]
    return float(np.mean([w.get("naive", 0.0) for w in weights.values()]))


def test_weights_move_to_the_member_that_forecasts_a_new_regime() -> None:
    before, after = _regime_change()
    model = _auto().fit(_frame(before))
    assert _naive_weight(model) < 0.2  # the validation window was seasonal
    _walk(model, after, before.shape[1])
    info = model.describe()["online_weights"]
    # 2 series x 48 validation rows at fit; at most twice that per series kept online
    assert info["reweighings"] > 0 and info["evidence_rows"] <= 2 * 2 * 48
    assert _naive_weight(model) > 0.8


def test_frozen_weights_stay_where_the_fit_put_them() -> None:
    before, after = _regime_change()
    model = _auto(online_weights=False).fit(_frame(before))
    at_fit = model.describe()["series_weights"]
    _walk(model, after, before.shape[1])
    assert model.describe()["series_weights"] == at_fit
    assert model.describe()["online_weights"]["reweighings"] == 0


def test_reweighing_improves_the_forecast_after_the_regime_change() -> None:
    before, after = _regime_change(seed=11)
    errors = {}
    for online in (True, False):
        model = _auto(online_weights=online).fit(_frame(before))
        half = after.shape[1] // 2
        _walk(model, after[:, :half], before.shape[1])
        f = model.predict(1)
        truth = after[:, half]
        errors[online] = float(np.abs(f.sort_values("series")["q0.5"].to_numpy() - truth).mean())
    assert errors[True] < errors[False]


def _evidence(group: list[int], cutoff: list[int]) -> Evidence:
    n = len(group)
    return Evidence(
        np.array(group), np.array(cutoff, dtype=np.int64), np.ones(n, dtype=np.int64),
        np.arange(n, dtype=float), np.zeros((2, n, 3)), np.zeros((2, n)),
    )  # fmt: skip


def test_evidence_keeps_each_series_newest_rows() -> None:
    old = _evidence([0, 0, 1, 1], [1, 2, 1, 2])
    new = _evidence([0, 0], [3, 4])
    kept = old.extended(new, per_group=2)
    assert sorted(zip(kept.group.tolist(), kept.cutoff.tolist(), strict=True)) == [
        (0, 3),
        (0, 4),
        (1, 1),
        (1, 2),
    ]
    assert kept.later_half().tolist() == [c >= 3 for c in kept.cutoff.tolist()]  # of cutoffs 1-4


def test_pending_forecasts_are_scored_once_and_unobservable_ones_dropped() -> None:
    def made(cutoff: int, ts: list[int]) -> PendingForecasts:
        n = len(ts)
        return PendingForecasts(
            np.zeros(n, dtype=np.int64), np.array(ts, dtype=np.int64), np.full(n, cutoff, dtype=np.int64),
            np.arange(1, n + 1), np.zeros((1, n, 3)), np.zeros((1, n)),
        )  # fmt: skip

    pending = PendingForecasts.empty(1, 3).add(made(10, [11, 12, 13]), keep_cutoffs=4)
    pending = pending.add(made(10, [11, 12, 13]), keep_cutoffs=4)  # the same cutoff again: replaced
    assert len(pending.group) == 3
    # 11 is observed twice (the later value counts), 12 never arrives, 13 is still ahead
    scored, left = pending.resolve(
        np.array([0, 0]), np.array([11, 11]), np.array([1.0, 2.0]), latest=np.array([12])
    )
    assert scored.y.tolist() == [2.0] and scored.cutoff.tolist() == [10]
    assert left.ts.tolist() == [13]


def test_the_first_steps_can_have_weights_of_their_own() -> None:
    """A series whose next value is its last one (naive wins at step 1) but that returns to a daily profile
    within hours (seasonal naive wins further ahead): with `short_horizon_steps` the first step leans on
    naive while the later steps keep the all-step weights; with 0 one set serves every step."""
    rng = np.random.default_rng(5)
    t = np.arange(PERIOD * 14)
    profile = 10 * np.sin(2 * np.pi * t / PERIOD)
    shock = np.zeros(len(t))
    for i in range(1, len(t)):  # a shock that decays within a few hours
        shock[i] = 0.7 * shock[i - 1] + rng.normal(0, 2.0)
    values = np.stack([profile + shock + 50, profile + shock[::-1] + 80])
    one = _auto(short_horizon_steps=0).fit(_frame(values))
    assert one.describe()["short_horizon_weights"] is None
    split = _auto(short_horizon_steps=1).fit(_frame(values))
    info = split.describe()["short_horizon_weights"]
    assert info["steps"] == 1
    assert info["weights"].get("naive", 0.0) > split.describe()["weights"].get("naive", 0.0)
    f = split.predict(6).sort_values(["series", "horizon"])
    g = one.predict(6).sort_values(["series", "horizon"])
    later = f["horizon"].to_numpy() > 1
    assert np.allclose(f["q0.5"].to_numpy()[later], g["q0.5"].to_numpy()[later])
    assert not np.allclose(f["q0.5"].to_numpy()[~later], g["q0.5"].to_numpy()[~later])
