"""`auto` on series whose truth is known: the right member wins, the ensemble never loses to its best
member on validation, the search stays within its budget and explains itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecasting.auto import AutoForecaster, rows_within_budget
from forecasting.base import DEFAULT_MODEL, Forecaster, create_forecaster
from forecasting.types import InsufficientHistoryError, quantile_columns, validate_forecast_frame
from tests.forecasting.conftest import FAST_CONFIG, START

STATS = ["naive", "seasonal_naive", "seasonal_window", "autoets"]


def _frame(values: np.ndarray, freq: str = "1h") -> pd.DataFrame:
    ts = pd.date_range(START, periods=values.shape[1], freq=freq)
    return pd.concat(
        [pd.DataFrame({"series_id": f"s{i}", "ts": ts, "value": row}) for i, row in enumerate(values)],
        ignore_index=True,
    )


def _auto(**kw: Any) -> AutoForecaster:
    return AutoForecaster(**{"horizon": 6, "validation_points": 48, "rounds": 10, **kw})


def _top(model: AutoForecaster) -> dict[str, str]:
    return {sid: max(w, key=w.get) for sid, w in model.describe()["series_weights"].items()}


def test_auto_is_the_default() -> None:
    assert DEFAULT_MODEL == "auto"


def test_pure_seasonal_series_the_seasonal_member_wins() -> None:
    rng = np.random.default_rng(1)
    shape = rng.uniform(0, 10, 24)  # an irregular daily profile, repeated exactly, a little noise
    values = np.stack([np.tile(shape + 5 * i, 14) + rng.normal(0, 0.1, 24 * 14) for i in range(3)])
    model = _auto(
        candidates=["naive", "seasonal_naive", "autoets"], candidate_config={"autoets": {"season_length": 1}}
    ).fit(_frame(values))
    assert set(_top(model).values()) == {"seasonal_naive"}


def test_random_walk_naive_or_ets_wins() -> None:
    rng = np.random.default_rng(2)
    values = 100 + np.cumsum(rng.normal(0, 1, (3, 24 * 14)), axis=1)
    model = _auto(candidates=STATS).fit(_frame(values))
    assert set(_top(model).values()) <= {"naive", "autoets"}


def test_linear_trend_ets_wins() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(24 * 14)
    values = np.stack([10 + (0.5 + 0.2 * i) * t + rng.normal(0, 0.5, len(t)) for i in range(3)])
    model = _auto(candidates=STATS).fit(_frame(values))
    info = model.describe()
    assert max(info["weights"], key=info["weights"].get) == "autoets"  # the pooled choice
    members = {k: v["crps_scaled"] for k, v in info["validation"]["scores"].items() if k in STATS}
    assert min(members, key=members.get) == "autoets"
    # naive carries the mean change forward (drift), so on single series it can tie with ETS
    assert list(_top(model).values()).count("autoets") >= 2


def test_the_ensemble_is_never_worse_than_its_best_member_on_validation() -> None:
    rng = np.random.default_rng(4)
    t = np.arange(24 * 14)
    season = 3 * np.sin(2 * np.pi * t / 24)
    walk = np.cumsum(rng.normal(0, 0.5, (4, len(t))), axis=1)
    values = 50 + season + walk + rng.normal(0, 0.5, (4, len(t)))
    model = _auto(**FAST_CONFIG["auto"]).fit(_frame(values))
    scores = model.describe()["validation"]["scores"]
    members = model.describe()["members"]
    best = min(v["crps_scaled"] for k, v in scores.items() if k in members)
    assert scores["ensemble"]["crps_scaled"] <= best + 1e-12
    # the mean has weights of its own, chosen on squared error: never worse than the best member's mean
    best_mean = min(v["mse_scaled"] for k, v in scores.items() if k in members)
    assert scores["ensemble"]["mse_scaled"] <= best_mean + 1e-12


def test_describe_is_saved_with_the_model_and_is_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    model = _auto(**FAST_CONFIG["auto"]).fit(_frame(50 + rng.normal(0, 1, (2, 24 * 10))))
    info = model.describe()
    json.dumps(info)
    assert set(info["weights"]) == set(info["members"]) and sum(info["weights"].values()) == pytest.approx(1)
    assert set(info["mean_weights"]) == set(info["members"])
    assert sum(info["mean_weights"].values()) == pytest.approx(1)
    for weights in info["series_weights"].values():
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    assert {"ensemble", "calibrated", *info["members"]} <= set(info["validation"]["scores"])
    loaded = Forecaster.load(model.save(tmp_path / "auto.pkl"))
    assert isinstance(loaded, AutoForecaster) and loaded.describe() == info


def test_a_tiny_budget_keeps_only_the_cheapest_member() -> None:
    rng = np.random.default_rng(6)
    model = _auto(time_budget=1e-9).fit(_frame(50 + rng.normal(0, 1, (2, 24 * 10))))
    info = model.describe()
    assert info["members"] == ["naive"]
    assert all("budget" in why for why in info["skipped"].values())
    validate_forecast_frame(model.predict(6))


def test_short_history_falls_back_and_too_little_says_how_much() -> None:
    rng = np.random.default_rng(7)
    short = _auto().fit(_frame(50 + rng.normal(0, 1, (1, 8))))
    assert short.describe()["members"] == ["naive", "autoets"]
    assert "too short to validate" in next(iter(short.describe()["skipped"].values()))
    validate_forecast_frame(short.predict(6))
    with pytest.raises(InsufficientHistoryError, match=r"has 1 observation.*needs at least"):
        _auto(freq="1h").fit(_frame(np.array([[3.0]])))


def test_non_negative_series_never_get_negative_quantiles() -> None:
    rng = np.random.default_rng(8)
    counts = rng.poisson(0.4, (3, 24 * 12)).astype(float)
    out = _auto(**FAST_CONFIG["auto"]).fit(_frame(counts)).predict(6)
    assert (out[quantile_columns()].to_numpy() >= 0).all() and (out["mean"] >= 0).all()


Probe = tuple[AutoForecaster, pd.DataFrame, np.ndarray, np.ndarray]


def _lightgbm_only(values: np.ndarray, rows: int) -> Probe:
    model = _auto(candidates=["naive", "lightgbm"], candidate_config={"lightgbm": {"max_train_rows": rows}})
    frame = _frame(values)
    ts = pd.DatetimeIndex(frame["ts"]).asi8
    return model, frame, ts, np.sort(np.unique(ts))[[-60, -30]]


def test_a_sampled_member_is_fitted_whole_when_the_budget_allows_and_skipped_when_it_cannot_learn() -> None:
    rng = np.random.default_rng(9)
    values = 50 + rng.normal(0, 1, (4, 24 * 20))
    model, frame, ts, cutoffs = _lightgbm_only(values, rows=20_000)
    assert model._size_to_budget("lightgbm", frame, ts, cutoffs, left=1e6)
    assert model._sized == {}  # the whole sample fits: nothing shrunk
    assert not model._size_to_budget("lightgbm", frame, ts, cutoffs, left=0.0)
    assert "fewer than 2,000 rows" in model._skipped["lightgbm"]


def test_a_sampled_member_is_shrunk_to_what_is_left_of_the_budget() -> None:
    # a probe of 1/8 of the rows took 2 s: the whole fit would take 16 s
    assert rows_within_budget(80_000, 10_000, 10**9, spent=2.0, left=20.0) == (80_000, 16.0)
    assert rows_within_budget(80_000, 10_000, 10**9, spent=2.0, left=8.0) == (40_000, 16.0)
    # too little left to learn from: skipped
    assert rows_within_budget(80_000, 10_000, 10**9, spent=2.0, left=0.1)[0] is None
    # fewer rows exist than the probe took: the probe was already the whole fit
    assert rows_within_budget(80_000, 10_000, 6_000, spent=2.0, left=2.5) == (80_000, 2.0)


def _lead_lag(n_entities: int = 4, steps: int = 24 * 20) -> pd.DataFrame:
    """Per entity a random-walk `load` and a `cpu` that follows it one step later (plus a little noise)."""
    rng = np.random.default_rng(5)
    ts = pd.date_range(START, periods=steps, freq="1h")
    parts = []
    for e in range(n_entities):
        load = 100 + np.cumsum(rng.normal(0, 3, steps + 1))
        cpu = load[:-1] + rng.normal(0, 0.3, steps)
        parts += [
            pd.DataFrame({"series_id": f"e{e}", "metric": "load", "ts": ts, "value": load[1:]}),
            pd.DataFrame({"series_id": f"e{e}", "metric": "cpu", "ts": ts, "value": cpu}),
        ]
    return pd.concat(parts, ignore_index=True)


def test_covariates_are_chosen_by_validation_where_they_carry_information() -> None:
    both = ["naive", "lightgbm", "lightgbm_no_covariates"]
    model = _auto(horizon=1, candidates=both).fit(_lead_lag())
    described = model.describe()
    assert set(described["members"]) == set(both)
    scores = described["validation"]["scores"]
    # `cpu` is `load` one step later: with the other indicator it is known a step ahead, without it a
    # random walk, so the validated weights of every entity's cpu go to the model that reads covariates
    assert scores["lightgbm"]["crps_scaled"] < scores["lightgbm_no_covariates"]["crps_scaled"]
    for e in range(4):
        weights = described["series_weights"][f"e{e}/cpu"]
        assert weights.get("lightgbm", 0.0) > weights.get("lightgbm_no_covariates", 0.0), weights


def test_without_other_indicators_the_covariate_free_twin_is_not_fitted_twice() -> None:
    rng = np.random.default_rng(2)
    values = 50 + np.cumsum(rng.normal(0, 1, (3, 24 * 14)), axis=1)
    model = _auto(candidates=["naive", "lightgbm", "lightgbm_no_covariates"]).fit(_frame(values))
    described = model.describe()
    assert "lightgbm_no_covariates" not in described["members"]
    assert "same model as `lightgbm`" in described["skipped"]["lightgbm_no_covariates"]


def test_weighted_members_are_refitted_on_the_whole_window_when_the_budget_allows() -> None:
    # one LightGBM member: once refitted, auto's median is that of the same model fitted on all the data
    # (the validation window is the most recent data; leaving it out is what a refit repairs)
    rng = np.random.default_rng(12)
    frame = _frame(50 + np.cumsum(rng.normal(0, 1, (3, 24 * 8)), axis=1))
    lgb = {"n_estimators": 30, "num_threads": 1}
    model = _auto(candidates=["lightgbm"], candidate_config={"lightgbm": lgb}).fit(frame)
    alone = create_forecaster("lightgbm", max_horizon=6, **lgb).fit(frame)
    assert model.describe()["refitted_on_whole_window"] == ["lightgbm"]
    both = model.predict(6).merge(alone.predict(6), on=["series", "metric", "horizon"])
    np.testing.assert_allclose(both["q0.5_x"], both["q0.5_y"])
    # with no budget left for it, the member keeps its validated state and the reason is given
    small = {**lgb, "max_train_rows": 2_000}  # not sized to the budget: the first candidate always runs
    kept = _auto(candidates=["lightgbm"], candidate_config={"lightgbm": small}, time_budget=1e-6).fit(frame)
    assert kept.describe()["refitted_on_whole_window"] == []
    assert "kept as validated" in kept.describe()["not_refitted"]["lightgbm"]
    alone = create_forecaster("lightgbm", max_horizon=6, **small).fit(frame)
    worse = kept.predict(6).merge(alone.predict(6), on=["series", "metric", "horizon"])
    assert not np.allclose(worse["q0.5_x"], worse["q0.5_y"])
