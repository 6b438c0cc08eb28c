"""The batched Bayesian scaling decision equals the per-workload one (replicas, wanted, risk)."""

from __future__ import annotations

import numpy as np
import pytest

from policies.distribution import QuantileForecast
from policies.guardrails import StepLimit
from policies.scaling import BayesianScalingPolicy
from policies.scaling_batch import ScalingBatch, decide_batch, stack_forecasts
from policies.types import InvalidPolicyInput

LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def random_batch(rng: np.random.Generator, workloads: int = 40, **overrides: object) -> ScalingBatch:
    """Workloads of varied size, some without a forecast, with interference, backlog and history."""
    k = int(overrides.pop("history", rng.integers(0, 60)))
    steps = int(rng.integers(1, 6))
    capacity = rng.uniform(2.0, 30.0, workloads)
    level = capacity * rng.uniform(0.5, 12.0, workloads)
    observed = np.maximum(level[None, :] * (1 + 0.3 * rng.standard_normal((k, workloads))), 0.0)
    centre = level[:, None, None] * rng.uniform(0.7, 1.4, (workloads, steps, 1))
    spread = rng.uniform(0.02, 0.5, (workloads, 1, 1)) * centre * np.linspace(-1.5, 1.5, len(LEVELS))
    forecast = np.sort(np.maximum(centre + spread, 0.0), axis=2)
    has = rng.uniform(size=workloads) < 0.8
    degradation: list[QuantileForecast | None] = []
    for _w in range(workloads):
        kind = rng.integers(0, 4)
        if kind == 0:
            degradation.append(None)
        elif kind == 1:  # a single-valued slowdown
            degradation.append(QuantileForecast((0.05, 0.5, 0.95), np.full((1, 3), rng.uniform(0, 0.3))))
        else:  # spread over steps (repeats over the load window when shorter)
            d_steps = int(rng.integers(1, steps + 1)) if kind == 2 else steps
            q = np.sort(rng.uniform(0.0, 0.6, (d_steps, len(LEVELS))), axis=1)
            degradation.append(QuantileForecast(LEVELS, q))
    recent_ts = np.full((workloads, 6), np.nan)
    recent_n = np.zeros((workloads, 6), dtype=int)
    for w in range(workloads):
        m = int(rng.integers(0, 7))
        recent_ts[w, :m] = 10_000.0 - rng.uniform(0, 600, m)
        recent_n[w, :m] = rng.integers(1, 20, m)
    values: dict[str, object] = {
        "now_ts": 10_000.0,
        "current": rng.integers(0, 25, workloads),
        "capacity": capacity,
        "observed": observed,
        "levels": LEVELS,
        "forecast": forecast,
        "has_forecast": has,
        "epsilon": rng.choice([0.01, 0.05, 0.2], workloads),
        "backlog": np.where(rng.uniform(size=workloads) < 0.4, rng.uniform(0, 5000, workloads), 0.0),
        "observed_step_seconds": 60.0,
        "forecast_step_seconds": 60.0,
        "degradation": degradation,
        "skill": rng.uniform(0.2, 3.0, workloads),
        "recent_ts": recent_ts,
        "recent_n": recent_n,
        "max_replicas": 40,
    }
    values.update(overrides)
    return ScalingBatch(**values)  # type: ignore[arg-type]


def assert_same_as_per_workload(policy: BayesianScalingPolicy, batch: ScalingBatch) -> None:
    out = decide_batch(policy, batch)
    for w in range(batch.workloads):
        one = policy.decide(batch.row(w))
        assert out.replicas[w] == one.params["replicas"], w
        assert out.wanted[w] == one.details["wanted_replicas"], w
        if "risk_at_final" in one.details:
            assert abs(out.risk_at_final[w] - one.details["risk_at_final"]) <= 1e-9, w
            assert out.epsilon_used[w] == pytest.approx(one.details["epsilon_used"], abs=1e-12)
        else:  # the no-forecast, no-history fallback
            assert np.isnan(out.risk_at_final[w]) and one.fallback_reason


@pytest.mark.parametrize("seed", range(12))
def test_batch_equals_per_workload_on_varied_inputs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    policy = BayesianScalingPolicy(reactive_floor=bool(seed % 2), step_limit=StepLimit(max_up=3))
    assert_same_as_per_workload(policy, random_batch(rng))


@pytest.mark.parametrize(
    "overrides",
    [
        {"skill": None},  # skill not tracked: the forecast alone
        {"history": 0},  # nothing observed yet
        {"history": 3},  # too few changes for persistence: hold / fallback
        {"history": 400},  # enough for persistence at every ε
        {"degradation": None, "max_replicas": None},
        {"drain_seconds": 45.0},
        {"sla_penalty": 0.0},  # cost alone: the smallest feasible count
        {"cost_per_replica": 0.0},  # penalty alone: no count is dominated by a cheaper one
        {"sla_penalty": 2000.0, "history": 200},  # the penalty buys counts well past the feasible one
    ],
)
def test_batch_equals_per_workload_in_edge_cases(overrides: dict[str, object]) -> None:
    rng = np.random.default_rng(99)
    assert_same_as_per_workload(BayesianScalingPolicy(), random_batch(rng, **overrides))


def test_batch_equals_per_workload_with_violation_history() -> None:
    rng = np.random.default_rng(5)
    windows = rng.integers(0, 200, 40)
    violated = (windows * rng.uniform(0, 0.3, 40)).astype(int)
    batch = random_batch(rng, windows=windows, violated=violated)
    assert_same_as_per_workload(BayesianScalingPolicy(), batch)


def test_interference_and_backlog_raise_the_batched_answer() -> None:
    """Not only equal to the loop: the batch reacts to what it should (more replicas under slowdown)."""
    rng = np.random.default_rng(3)
    healthy = random_batch(rng, history=200, degradation=None, backlog=np.zeros(40))
    slowed = ScalingBatch(
        **{
            **healthy.__dict__,
            "degradation": [QuantileForecast((0.05, 0.5, 0.95), np.full((1, 3), 0.4))] * 40,
        }
    )
    queued = ScalingBatch(**{**healthy.__dict__, "backlog": np.full(40, 3000.0)})
    policy = BayesianScalingPolicy(step_limit=StepLimit(max_up=100), reactive_floor=False)
    base = decide_batch(policy, healthy).wanted
    assert (decide_batch(policy, slowed).wanted >= base).all()
    assert (decide_batch(policy, slowed).wanted > base).sum() > 20
    assert (decide_batch(policy, queued).wanted >= base).all()


def test_bad_batch_is_refused_with_the_field_named() -> None:
    rng = np.random.default_rng(0)
    batch = random_batch(rng)
    with pytest.raises(InvalidPolicyInput, match="capacity"):
        ScalingBatch(**{**batch.__dict__, "capacity": batch.capacity[:-1]})
    with pytest.raises(InvalidPolicyInput, match="epsilon"):
        ScalingBatch(**{**batch.__dict__, "epsilon": np.zeros(batch.workloads)})


def test_stack_forecasts_refuses_mixed_windows() -> None:
    a = QuantileForecast(LEVELS, np.tile(np.arange(7.0), (3, 1)))
    b = QuantileForecast(LEVELS, np.tile(np.arange(7.0), (2, 1)))
    levels, values, has, _ = stack_forecasts([a, None, a])
    assert levels == LEVELS and values.shape == (3, 3, 7) and has.tolist() == [True, False, True]
    with pytest.raises(InvalidPolicyInput, match="share"):
        stack_forecasts([a, b])
