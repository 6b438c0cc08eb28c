"""Power capping policies: chance constraint, low priority first, hysteresis, brake, fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from policies.power import PolcaPowerPolicy, ReactivePowerPolicy
from policies.power_model import DomainModel, PowerDomainInput, ServerState, estimate_demand
from policies.power_profiles import gpu_curve, gpu_models
from policies.types import InvalidPolicyInput, build_policy
from tests.policies.examples_power import (
    HOST_W,
    domain,
    example_inputs,
    fallback_inputs,
    normal_forecast,
    servers,
)


def limits_by_priority(decision, srv):
    limits = decision.params["power_limits_watts"]
    out: dict[int, list] = {}
    for s in srv:
        out.setdefault(s.priority, []).append(limits[s.name])
    return out


@pytest.mark.parametrize("name", gpu_models())
def test_gpu_curves_are_monotone_and_lose_nothing_below_the_cap(name):
    c = gpu_curve(name)
    assert np.all(np.diff(c.limits) > 0) and np.all(np.diff(c.throughput) >= 0) and c.throughput[-1] == 1.0
    assert np.all(np.diff(c.bound_power) >= 0)
    assert float(c.loss(np.array(c.full_power[0] * 0.9), c.min_limit)) == 0.0
    assert float(c.loss(np.array(c.nameplate), c.min_limit)) > 0.0
    assert ("derived" in c.source) == (name in ("a100", "h100"))


def test_share_model_sums_back_to_the_total_and_caps_clip():
    srv = servers(watts=2000.0)
    model = DomainModel(srv, np.array([s.power_watts for s in srv], dtype=float))
    q = np.array([5_000.0, 20_000.0, 30_000.0])
    assert np.allclose(model.server_power(q).sum(axis=0), q)


def test_no_caps_when_the_forecast_stays_below_t1():
    d = PolcaPowerPolicy().decide(domain(24_000))
    assert d.action == "hold" and not any(d.params["power_limits_watts"].values())
    assert d.details["risk_after"] <= 0.01 and d.fallback_reason is None


@pytest.mark.parametrize("mean", [29_500, 31_000, 34_000, 38_000])
def test_capping_keeps_the_chance_constraint_and_caps_low_priority_first(mean):
    inp = domain(mean)
    d = PolcaPowerPolicy().decide(inp)
    assert d.action == "cap"
    assert d.details["risk_after"] <= inp.epsilon
    assert mean < 33_000 or d.details["risk_uncapped"] > 0.5
    by_prio = limits_by_priority(d, inp.servers)
    # a class is capped only when every lower class is capped at least as deep (lower or equal limit)
    for lo, hi in ((0, 1), (1, 2)):
        if any(v is not None for v in by_prio[hi]):
            assert all(v is not None for v in by_prio[lo])
            assert max(by_prio[lo]) <= min(by_prio[hi])
    assert any(v is not None for v in by_prio[0])


def test_risk_claimed_matches_monte_carlo_of_the_share_model():
    """Simulate totals from the forecast, split them with the share model, apply the chosen caps."""
    inp = domain(34_000, sd=1500.0)
    d = PolcaPowerPolicy().decide(inp)
    rng = np.random.default_rng(7)
    draws = inp.total_forecast.draws(200_000, rng)[:, 0]
    _, demand = estimate_demand(inp)
    per_server = DomainModel(inp.servers, demand).server_power(draws)
    for i, s in enumerate(inp.servers):
        lim = d.params["power_limits_watts"][s.name]
        if lim is not None:
            per_server[i] = np.minimum(per_server[i], HOST_W + s.gpus * gpu_curve(s.profile).bound_at(lim))
    breach = float((per_server.sum(axis=0) > inp.budget_watts).mean())
    assert breach <= inp.epsilon + 0.002
    assert float((draws > inp.budget_watts).mean()) > 0.5  # without caps it would breach most of the time


def test_higher_priority_protected_by_priority_weight():
    inp = domain(31_000)
    d = PolcaPowerPolicy().decide(inp)
    lost = d.details["expected_lost_gpus_by_priority"]
    assert lost["0"] >= lost["1"] >= lost["2"]
    assert lost["2"] == 0.0


def test_brake_when_no_cap_plan_can_hold_the_budget():
    inp = domain(60_000, servers=servers(watts=5000.0), budget=20_000.0)
    d = PolcaPowerPolicy().decide(inp)
    assert d.action == "brake" and d.params["brake"] is True
    assert [g.name for g in d.guardrails] == ["min_power_limit"]


def test_hysteresis_holds_caps_until_enough_calm_windows():
    capped = servers(watts=18_000 / 12, limit=200.0)
    policy = PolcaPowerPolicy(uncap_windows=3)
    calm = 0
    for window in range(3):
        d = policy.decide(domain(18_000, servers=capped, calm_windows=calm))
        calm = d.details["calm_windows"]
        assert calm == window + 1
        if window < 2:
            assert d.action == "hold" and d.guardrails[0].name == "uncap_hysteresis"
            assert all(v == 200.0 for v in d.params["power_limits_watts"].values())
    assert d.action == "uncap" and not any(d.params["power_limits_watts"].values())


def test_no_uncap_when_relaxed_total_is_above_the_uncap_threshold():
    capped = servers(watts=28_500 / 12, limit=280.0)
    d = PolcaPowerPolicy().decide(domain(28_500, servers=capped, calm_windows=10))
    assert d.details["calm_windows"] == 0 and d.action in ("hold", "cap")


def test_binding_caps_raise_the_estimated_demand():
    capped = servers(watts=HOST_W + 8 * 200.0, limit=200.0)
    inp = domain(12 * (HOST_W + 1600.0), servers=capped)
    measured, demand = estimate_demand(inp)
    assert (demand > measured).all()
    assert PolcaPowerPolicy().decide(inp).forecast["demand_scale"] > 1.0


def test_falls_back_to_the_reactive_rule_without_a_forecast():
    inp = PowerDomainInput("row-a", 30_000.0, servers(watts=2_350.0), None)
    d = PolcaPowerPolicy().decide(inp)
    assert d.fallback_reason and "no forecast" in d.fallback_reason
    assert d.policy == "power_polca" and d.action == "cap"
    assert d.params == ReactivePowerPolicy().decide(inp).params


def test_reactive_escalates_with_measured_power():
    low = ReactivePowerPolicy().decide(PowerDomainInput("r", 33_000.0, servers(watts=2_000.0), None))
    mid = ReactivePowerPolicy().decide(PowerDomainInput("r", 33_000.0, servers(watts=2_550.0), None))
    high = ReactivePowerPolicy().decide(PowerDomainInput("r", 33_000.0, servers(watts=3_000.0), None))
    assert (low.action, mid.action, high.action) == ("hold", "cap", "brake")
    assert mid.params["stage"] == "T1"
    assert all(v is None for k, v in mid.params["power_limits_watts"].items() if int(k[1:]) % 3 == 2)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"budget_watts": -1.0}, "budget_watts"),
        ({"epsilon": 0.7}, "epsilon"),
        ({"calm_windows": -1}, "calm_windows"),
        ({"forecast_basis": "guess"}, "forecast_basis"),
        ({"servers": ()}, "servers"),
        ({"servers": servers(n=2) + servers(n=1)}, "servers"),
    ],
)
def test_invalid_domain_input_names_the_field(kwargs, field):
    base = {"domain": "d", "budget_watts": 1000.0, "servers": servers(n=2), "total_forecast": None}
    with pytest.raises(InvalidPolicyInput, match=field):
        PowerDomainInput(**{**base, **kwargs})


def test_invalid_server_names_the_field():
    with pytest.raises(InvalidPolicyInput, match="profile"):
        ServerState("x", 0, "tpu-v9", 8, 100.0)
    with pytest.raises(InvalidPolicyInput, match="power_watts"):
        ServerState("x", 0, "a100", 8, float("nan"))
    with pytest.raises(InvalidPolicyInput, match="t_uncap"):
        PolcaPowerPolicy(t1=0.7, t_uncap=0.8)


def test_examples_are_deterministic_jsonable_and_fallbacks_say_why():
    for name, inp in example_inputs():
        a, b = build_policy(name).decide(inp), build_policy(name).decide(inp)
        text = json.dumps(a.explanation(), allow_nan=False)
        assert text == json.dumps(b.explanation(), allow_nan=False)
        assert a.fallback_reason is None, (name, a.fallback_reason)
    for name, inp in fallback_inputs():
        assert build_policy(name).decide(inp).fallback_reason, name


def test_normal_forecast_helper_is_sorted():
    assert np.all(np.diff(normal_forecast(10.0, 1.0).values, axis=1) > 0)
