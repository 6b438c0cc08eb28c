"""Power forecaster: semi-synthetic generator, domain totals, calibrated bands and P(total > budget)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import backtest
from forecasting.metrics import coverage
from forecasting.power import (
    DOMAIN_PREFIX,
    PowerForecaster,
    domain_totals,
    exceedance_from_quantiles,
    exceedance_probability,
    window_exceedance,
)
from forecasting.power_data import PowerGenerator, generate_from
from forecasting.types import DEFAULT_QUANTILES, quantile_columns, validate_forecast_frame

DATA = Path(__file__).resolve().parents[1] / "data"
H = 6
_LGB = {"n_estimators": 40, "max_train_rows": 15_000, "num_leaves": 15, "num_threads": 1}
FAST = {"base_config": _LGB, "horizon": H, "calibration_steps": 40}


@pytest.fixture(scope="module")
def generated() -> tuple[pd.DataFrame, dict[str, str]]:
    return generate_from(DATA, PowerGenerator(n_domains=3, servers_per_domain=4, repeats=2, seed=1))


def test_generator_is_seeded_plausible_and_correlated(generated: tuple[pd.DataFrame, dict[str, str]]) -> None:
    frame, domains = generated
    again, _ = generate_from(DATA, PowerGenerator(n_domains=3, servers_per_domain=4, repeats=2, seed=1))
    pd.testing.assert_frame_equal(frame, again)
    assert len(domains) == 12 and set(domains.values()) == {"d0", "d1", "d2"}
    watts = frame["value"].to_numpy()
    assert watts.min() > 0.8 * (700 + 8 * 60) and watts.max() < 1.2 * (700 + 8 * 400)
    wide = frame.pivot(index="ts", columns="series_id", values="value")
    assert wide[["d0/s0", "d0/s1"]].corr().iloc[0, 1] > 0.5  # same domain: shared request bursts


def test_domain_totals_only_where_every_server_reported() -> None:
    ts = pd.date_range("2024-01-01", periods=3, freq="10s", tz="UTC")
    frame = pd.DataFrame(
        {"series_id": ["a", "a", "a", "b", "b"], "metric": "power_w",
         "ts": [ts[0], ts[1], ts[2], ts[0], ts[2]], "value": [1.0, 2.0, 3.0, 10.0, 30.0]}
    )  # fmt: skip
    totals = domain_totals(frame, {"a": "x", "b": "x"})
    assert totals["series_id"].tolist() == ["domain:x", "domain:x"]
    assert totals["value"].tolist() == [11.0, 33.0]


def test_power_forecaster_forecasts_servers_and_domain_totals(
    generated: tuple[pd.DataFrame, dict[str, str]],
) -> None:
    frame, domains = generated
    cut = frame["ts"].quantile(0.9)
    model = PowerForecaster(domains=domains, base_config=FAST).fit(frame[frame["ts"] <= cut])
    model.update(frame[frame["ts"] > cut])  # the totals keep being formed from streamed updates
    out = model.predict(H)
    validate_forecast_frame(out)
    assert {f"{DOMAIN_PREFIX}d{k}" for k in range(3)} <= set(out["series"])
    assert (out["cutoff"] == frame["ts"].max()).all()
    dom = out[out["series"] == "domain:d0"]["q0.5"].mean()
    srv = out[out["series"].isin([s for s, d in domains.items() if d == "d0"])]
    assert dom == pytest.approx(srv.groupby("horizon")["q0.5"].sum().mean(), rel=0.25)


def test_80pct_band_covers_held_out_generated_power(generated: tuple[pd.DataFrame, dict[str, str]]) -> None:
    frame, domains = generated
    data = pd.concat([frame, domain_totals(frame, domains)], ignore_index=True)
    result = backtest(PowerForecaster(base_config=FAST), data, H, test_fraction=0.2, step=2)
    s = result.scored
    is_dom = s["series"].str.startswith(DOMAIN_PREFIX)
    levels = DEFAULT_QUANTILES
    for rows in (s[~is_dom], s[is_dom]):
        cov = coverage(rows["y"], rows[quantile_columns()].to_numpy(), levels, 0.8)
        assert cov == pytest.approx(0.80, abs=0.08)  # tolerance: a few hundred dependent rows per group


def test_exceedance_is_monotone_exact_at_knots_and_has_tails() -> None:
    rng = np.random.default_rng(0)
    q = np.sort(rng.normal(1000, 100, size=(20, len(DEFAULT_QUANTILES))), axis=1)
    q[0] = 5.0  # a degenerate (constant) forecast
    budgets = np.linspace(q.min() - 500, q.max() + 500, 400)
    p = np.column_stack([exceedance_from_quantiles(q, DEFAULT_QUANTILES, b) for b in budgets])
    assert (np.diff(p, axis=1) <= 1e-12).all()
    assert p[:, 0] == pytest.approx(1.0, abs=1e-3) and p[:, -1] == pytest.approx(0.0, abs=1e-3)
    for j, tau in enumerate(DEFAULT_QUANTILES):
        assert exceedance_from_quantiles(q[1:], DEFAULT_QUANTILES, q[1:, j]) == pytest.approx(1 - tau)
    just_past = exceedance_from_quantiles(q[1:], DEFAULT_QUANTILES, q[1:, -1] + 1.0)
    assert ((just_past > 0) & (just_past < 0.01)).all()  # no false certainty beyond q0.99
    assert exceedance_from_quantiles(q[:1], DEFAULT_QUANTILES, 5.0 + 1e-9)[0] == 0.0


def test_exceedance_matches_empirical_frequency_on_seeded_data() -> None:
    rng = np.random.default_rng(3)
    n, parts = 900, []
    ts = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    for i in range(6):
        e = np.zeros(n)
        for t in range(1, n):
            e[t] = 0.6 * e[t - 1] + rng.normal(0, 40)  # AR(1) noise around a server's level
        parts.append(pd.DataFrame({"series_id": f"s{i}", "ts": ts, "value": 1500 + 50 * i + e}))
    frame = pd.concat(parts, ignore_index=True)
    result = backtest(PowerForecaster(base_config=FAST), frame, 3, test_fraction=0.3, step=2)
    s = result.scored
    budget = s["series"].map({f"s{i}": 1500 + 50 * i + 50.0 for i in range(6)}).to_numpy()
    p = exceedance_probability(s, budget)
    observed = float((s["y"].to_numpy() > budget).mean())
    assert 0.05 < observed < 0.3
    assert float(p.mean()) == pytest.approx(observed, abs=0.04)
    win = window_exceedance(s.drop(columns=["y"]), 1700.0)
    assert (win["p_max"] <= win["p_union"] + 1e-12).all()
