"""Bayesian scaling: chance constraint, interference, adaptive ε, guardrails against flapping, fallback."""

from __future__ import annotations

import numpy as np
import pytest

from policies.adaptive import ViolationHistory, adapt_risk
from policies.distribution import QuantileForecast
from policies.guardrails import StepLimit
from policies.scaling import BayesianScalingPolicy, ScalingInput, replica_risk
from policies.types import InvalidPolicyInput

LEVELS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


def normal_forecast(mean: float, sd: float, steps: int = 5) -> QuantileForecast:
    from scipy import stats

    row = stats.norm.ppf(LEVELS, loc=mean, scale=sd)
    return QuantileForecast(LEVELS, np.tile(row, (steps, 1)))


def scaling_input(**overrides: object) -> ScalingInput:
    base: dict[str, object] = {
        "workload": "api",
        "now_ts": 1_000_000.0,
        "current_replicas": 5,
        "replica_capacity": 10.0,
        "load_forecast": normal_forecast(40.0, 5.0),
        "observed_load": (40.0,) * 10,
        "target_utilisation": 0.8,
        "epsilon": 0.05,
        "max_replicas": 100,
    }
    base.update(overrides)
    return ScalingInput(**base)  # type: ignore[arg-type]


def test_choice_meets_epsilon_and_is_the_cheapest_that_does() -> None:
    inputs = scaling_input()
    decision = BayesianScalingPolicy(step_limit=StepLimit(max_up=100)).decide(inputs)
    n = decision.params["replicas"]
    # the exact answer: P(L > n*8) <= 0.05 with L ~ N(40, 5) → n*8 >= 48.2 → n = 7
    assert n == 7
    table = replica_risk(inputs, inputs.sla_penalty, 20)
    assert table.risk[n] <= 0.05 < table.risk[n - 1]
    assert np.all(np.diff(table.risk) <= 1e-12)  # more replicas never add risk
    chosen = [c for c in decision.candidates if c.note == "chosen"]
    assert chosen and chosen[0].params["replicas"] == 7 and chosen[0].feasible
    assert decision.explanation()["forecast"]["load"]["steps"] == 5


def test_same_input_same_decision() -> None:
    a = BayesianScalingPolicy().decide(scaling_input()).explanation()
    b = BayesianScalingPolicy().decide(scaling_input()).explanation()
    assert a == b


def test_interference_forecast_buys_more_replicas() -> None:
    policy = BayesianScalingPolicy(step_limit=StepLimit(max_up=100))
    healthy = policy.decide(scaling_input()).params["replicas"]
    noisy = policy.decide(scaling_input(degradation_forecast=normal_forecast(0.3, 0.05))).params["replicas"]
    assert noisy > healthy
    assert noisy >= 9  # capacity 8 * 0.7 = 5.6 per replica for a load around 40-48


def test_interference_risk_matches_a_large_monte_carlo() -> None:
    """The quadrature over the slowdown's quantiles gives what 400,000 independent draws of load and
    slowdown say, for every replica count."""
    load, deg = normal_forecast(40.0, 5.0, steps=3), normal_forecast(0.2, 0.08, steps=3)
    inputs = scaling_input(load_forecast=load, degradation_forecast=deg)
    table = replica_risk(inputs, inputs.sla_penalty, 14)
    rng = np.random.default_rng(7)
    draws = 400_000
    need_load = load.inverse_cdf(rng.uniform(size=draws))[:, 0]
    slow = np.clip(deg.inverse_cdf(rng.uniform(size=draws))[:, 0], 0.0, 0.95)
    usable = inputs.usable_capacity * (1.0 - slow)
    brute = np.array([np.mean(need_load > n * usable) for n in range(15)])
    assert np.abs(table.risk - brute).max() < 0.01
    assert 0.05 < table.risk[8] < 0.95  # the comparison runs through the interesting range


def test_a_single_valued_slowdown_is_exact() -> None:
    """A constant slowdown d is the healthy risk at capacity x (1 - d), to rounding."""
    flat = QuantileForecast(LEVELS, np.full((5, len(LEVELS)), 0.25))
    slowed = replica_risk(scaling_input(degradation_forecast=flat), 50.0, 20)
    healthy = replica_risk(scaling_input(replica_capacity=7.5), 50.0, 20)
    np.testing.assert_allclose(slowed.risk, healthy.risk, atol=1e-12)


def test_observed_violations_tighten_epsilon_and_add_replicas() -> None:
    policy = BayesianScalingPolicy(step_limit=StepLimit(max_up=100))
    fine = {"replica_capacity": 2.0, "current_replicas": 30}  # small replicas: ε moves the answer
    calm = policy.decide(scaling_input(violations=ViolationHistory(200, 8), **fine))
    burnt = policy.decide(scaling_input(violations=ViolationHistory(200, 40), **fine))
    assert burnt.details["epsilon_used"] < 0.05 <= calm.details["epsilon_used"] + 1e-12
    assert burnt.details["penalty_used"] > calm.details["penalty_used"]
    assert burnt.params["replicas"] > calm.params["replicas"]


def test_adapt_risk_bounds_and_prior() -> None:
    assert adapt_risk(0.05, 10.0, None).epsilon == 0.05
    harsh = adapt_risk(0.05, 10.0, ViolationHistory(1000, 900))
    assert harsh.epsilon == pytest.approx(0.005)  # floored at ε/10
    relaxed = adapt_risk(0.05, 10.0, ViolationHistory(2000, 0))
    assert 0.05 < relaxed.epsilon <= 0.1
    with pytest.raises(ValueError):
        ViolationHistory(3, 5)


def test_no_scale_in_on_forecast_alone() -> None:
    # the forecast says the load will vanish, but the load observed right now still needs 6 replicas
    inputs = scaling_input(
        current_replicas=8, load_forecast=normal_forecast(5.0, 1.0), observed_load=(45.0,) * 10
    )
    decision = BayesianScalingPolicy(stabilization_seconds=0).decide(inputs)
    assert decision.params["replicas"] == 6
    names = [g.name for g in decision.guardrails]
    assert "no_scale_in_on_forecast_alone" in names


def test_guardrails_stop_flapping() -> None:
    """Load wobbling around a replica boundary: raw choices flip every decision; the chain holds steady."""
    rng = np.random.default_rng(3)
    loads = 48.0 + 6.0 * np.sign(np.sin(np.arange(60) * np.pi / 2 + 0.1)) + rng.normal(0, 0.5, 60)

    def run(policy: BayesianScalingPolicy, guarded: bool) -> list[int]:
        replicas, history, out = 7, [], []
        for i, load in enumerate(loads):
            now = 1_000_000.0 + 60 * i
            inputs = scaling_input(
                now_ts=now,
                current_replicas=replicas,
                load_forecast=normal_forecast(load, 2.0, 1),
                observed_load=(float(load),),
                recent_recommendations=tuple(history),
            )
            d = policy.decide(inputs)
            replicas = d.params["replicas"] if guarded else d.details["wanted_replicas"]
            history.append((now, d.details["wanted_replicas"]))
            out.append(replicas)
        return out

    raw = run(BayesianScalingPolicy(), guarded=False)
    held = run(BayesianScalingPolicy(stabilization_seconds=300), guarded=True)
    changes = lambda xs: int(np.sum(np.diff(xs) != 0))  # noqa: E731
    assert changes(raw) >= 25  # up, up, down, down: a change every other decision
    assert changes(held) <= 2
    assert min(held[1:]) >= max(raw) - 1  # it holds the high count rather than dropping below need


def test_fallback_without_forecast_never_scales_in() -> None:
    decision = BayesianScalingPolicy().decide(scaling_input(load_forecast=None, current_replicas=9))
    assert decision.fallback_reason and "forecast" in decision.fallback_reason
    assert decision.params["replicas"] >= 9
    up = BayesianScalingPolicy().decide(scaling_input(load_forecast=None, current_replicas=2))
    assert up.params["replicas"] > 2 and up.action == "scale_out"


def test_bounds_and_bad_input() -> None:
    decision = BayesianScalingPolicy(step_limit=StepLimit(max_up=100)).decide(scaling_input(max_replicas=6))
    assert decision.params["replicas"] == 6
    assert any(g.name == "min_max" for g in decision.guardrails)
    with pytest.raises(InvalidPolicyInput, match="replica_capacity"):
        scaling_input(replica_capacity=0.0)
    with pytest.raises(InvalidPolicyInput, match="epsilon"):
        scaling_input(epsilon=1.5)


def test_backlog_is_drained_on_top_of_the_forecast_load() -> None:
    """L ~ N(40, 5), 8 usable per replica: P(L > 8n) <= 5 % needs 48.2 / 8 -> 7. A backlog drained over
    the 5-step x 60 s window adds backlog / 300 per second: 300 queued (+1/s, 49.2) still needs 7,
    3,000 (+10/s, 58.2) needs 8, and draining those 3,000 in 60 s (+50/s, 98.2) needs 13."""
    policy = BayesianScalingPolicy(step_limit=StepLimit(max_up=100))
    assert policy.decide(scaling_input(backlog=300.0)).params["replicas"] == 7
    decision = policy.decide(scaling_input(backlog=3000.0))
    assert decision.params["replicas"] == 8
    assert decision.details["backlog_rate"] == pytest.approx(10.0)
    fast = policy.decide(scaling_input(backlog=3000.0, drain_seconds=60.0))
    assert fast.params["replicas"] == 13
    with pytest.raises(InvalidPolicyInput, match="backlog"):
        scaling_input(backlog=-1.0)
    with pytest.raises(InvalidPolicyInput, match="drain_seconds"):
        scaling_input(drain_seconds=0.0)


def test_reactive_floor_never_leaves_the_latest_observation_short() -> None:
    """The forecast lags a level shift (it still says 40) while the last observation is 80: with the
    floor the answer serves 80 at 8 per replica (10), and the guardrail says why."""
    lagging = scaling_input(observed_load=(40.0,) * 9 + (80.0,), current_replicas=7)
    plain = BayesianScalingPolicy(step_limit=StepLimit(max_up=100), reactive_floor=False).decide(lagging)
    floored = BayesianScalingPolicy(step_limit=StepLimit(max_up=100), reactive_floor=True).decide(lagging)
    assert plain.params["replicas"] == 7
    assert floored.params["replicas"] == 10
    assert [g.name for g in floored.guardrails] == ["reactive_floor"]


def test_step_limit_from_configuration_mapping() -> None:
    policy = BayesianScalingPolicy(step_limit={"max_up": 1, "max_up_fraction": 0.0})
    assert policy.decide(scaling_input(current_replicas=2)).params["replicas"] == 3
