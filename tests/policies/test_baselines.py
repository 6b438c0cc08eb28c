"""Scaling baselines (HPA, static peak, VPA percentile, Holt-Winters), right-sizing and two-stage pools."""

from __future__ import annotations

import numpy as np
import pytest

from policies.baselines import HoltWintersPolicy, HpaPolicy, StaticPeakPolicy, VpaPercentilePolicy
from policies.distribution import QuantileForecast
from policies.pool import PoolInput, PoolWorkload, TwoStageScaler
from policies.rightsizing import ResourceUsage, RightsizingInput, RightsizingPolicy
from tests.policies.test_scaling import normal_forecast, scaling_input

NOW = 1_000_000.0


def test_hpa_tolerance_and_proportional_answer() -> None:
    hpa = HpaPolicy()
    # 5 replicas x usable 8 = 40: a load of 42 is within 10 % → no change
    assert hpa.decide(scaling_input(observed_load=(42.0,))).params["replicas"] == 5
    # 80 → ratio 2 → 10 replicas
    assert hpa.decide(scaling_input(observed_load=(80.0,))).params["replicas"] == 10


def test_hpa_scale_down_stabilization_and_scale_up_rate() -> None:
    hpa = HpaPolicy()
    recent = ((NOW - 120, 9), (NOW - 60, 6))
    held = hpa.decide(scaling_input(current_replicas=9, observed_load=(16.0,), recent_recommendations=recent))
    assert held.params["replicas"] == 9  # the 9 recommended two minutes ago still counts
    assert held.guardrails[0].name == "hpa_scale_down_stabilization"
    later = ((NOW - 400, 9),)
    free = hpa.decide(scaling_input(current_replicas=9, observed_load=(16.0,), recent_recommendations=later))
    assert free.params["replicas"] == 2
    # from 2 replicas, a 10x surge may only reach max(2*2, 2+4) = 6 in one 15 s period
    burst = hpa.decide(
        scaling_input(current_replicas=2, observed_load=(160.0,), recent_recommendations=((NOW - 15, 2),))
    )
    assert burst.params["replicas"] == 6
    assert burst.guardrails[-1].name == "hpa_scale_up_rate"


def test_static_peak_and_vpa_percentile() -> None:
    history = tuple(float(v) for v in [10, 20, 30, 80, 30, 20])
    peak = StaticPeakPolicy().decide(scaling_input(current_replicas=1, observed_load=history))
    assert peak.params["replicas"] == 10  # 80 / 8
    fixed = StaticPeakPolicy(peak_load=160.0).decide(scaling_input(current_replicas=1, observed_load=history))
    assert fixed.params["replicas"] == 20
    vpa = VpaPercentilePolicy(level=0.4, half_life=1e9, margin=0.0).decide(
        scaling_input(observed_load=history)
    )
    assert vpa.params["replicas"] == 3  # 40th percentile 20 → 20 / 8 → 3
    recent = VpaPercentilePolicy(level=0.4, half_life=1.0, margin=0.0).decide(
        scaling_input(observed_load=history)
    )
    assert recent.params["replicas"] == 3  # recent values dominate: 20, 30 → 20
    assert vpa.fallback_reason is None


def test_holt_winters_anticipates_a_rising_cycle() -> None:
    t = np.arange(240)
    cycle = 40 + 30 * np.sin(2 * np.pi * t / 60)
    # stop just before the rise: now is the trough of the cycle
    history = tuple(float(v) for v in cycle[: 240 - 15])
    hw = HoltWintersPolicy(season_length=60, horizon=10).decide(
        scaling_input(current_replicas=2, observed_load=history)
    )
    hpa = HpaPolicy().decide(scaling_input(current_replicas=2, observed_load=history))
    assert hw.params["replicas"] > hpa.params["replicas"]
    short = HoltWintersPolicy().decide(scaling_input(observed_load=(40.0,) * 5))
    assert short.fallback_reason and "Holt-Winters needs" in short.fallback_reason


def test_two_stage_pool_sizes_for_joint_demand_and_trims_low_priority_first() -> None:
    def workload(name: str, priority: int) -> PoolWorkload:
        inputs = scaling_input(workload=name, current_replicas=6, load_forecast=normal_forecast(40.0, 5.0))
        return PoolWorkload(inputs, replica_request=1.0, priority=priority)

    pool = PoolInput(
        "gpu-a",
        NOW,
        node_capacity=4.0,
        current_nodes=3,
        workloads=(workload("web", 10), workload("batch", 0)),
    )
    decisions = TwoStageScaler().plan(pool)
    assert decisions[0].params["nodes"] == 4  # 7 + 7 replicas of one unit at 4 per node
    assert all(d.params["replicas"] == 7 for d in decisions[1:])
    tight = PoolInput(
        "gpu-a",
        NOW,
        node_capacity=4.0,
        current_nodes=3,
        max_nodes=3,
        workloads=(workload("web", 10), workload("batch", 0)),
    )
    pool_d, web, batch = TwoStageScaler().plan(tight)
    assert pool_d.params["nodes"] == 3
    assert web.params["replicas"] == 7 and batch.params["replicas"] == 5  # 12 units fit; batch gave way
    assert batch.guardrails[-1].name == "pool_capacity"


def test_rightsizing_predictive_and_fallback() -> None:
    levels = (0.1, 0.5, 0.9, 0.95)
    cpu = QuantileForecast(levels, np.array([[0.5, 1.0, 2.0, 2.5], [0.5, 1.2, 3.0, 3.5]]))
    usage = {
        "cpu": ResourceUsage(forecast=cpu, current_request=1.0),
        "memory": ResourceUsage(observed=(100.0,) * 20),
    }
    decision = RightsizingPolicy().decide(RightsizingInput("api", usage))
    assert decision.params["cpu"]["request"] == pytest.approx(3.0 * 1.15)
    assert decision.params["memory"]["request"] == pytest.approx(115.0)
    assert decision.action == "set_requests"
    assert decision.fallback_reason and "memory" in decision.fallback_reason
