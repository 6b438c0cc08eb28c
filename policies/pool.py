"""Two-stage scaling (HARMONY): node-pool size first, then each workload's replicas under the pool.

Stage 1 sizes the pool for the *joint* demand of its workloads: each workload's load draws become
replica needs, times the workload's per-replica request, summed per draw and step. The draws of different
workloads share one uniform (comonotone), which is the conservative assumption when their correlation is
unknown: it upper-bounds the pool's tail risk. The pool gets the cheapest node count with
P(demand > nodes · node_capacity) ≤ ε. Stage 2 runs the Bayesian scaling policy per workload and, if the
answers do not fit the pool, trims the lowest-priority workloads first (never below their minimum),
recording the trim as a guardrail on their Decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from policies.guardrails import GuardrailContext, MinMax, StepLimit
from policies.scaling import BayesianScalingPolicy, ScalingInput
from policies.types import Candidate, Decision, GuardrailEffect, InvalidPolicyInput

MONTE_CARLO_DRAWS = 4000
"""Seeded draws of the pool's shared demand (workloads' loads are comonotone within a draw)."""


@dataclass(frozen=True)
class PoolWorkload:
    scaling: ScalingInput
    replica_request: float
    """Node capacity units one replica takes (e.g. CPU cores, GPUs)."""
    priority: int = 0


@dataclass(frozen=True)
class PoolInput:
    pool: str
    now_ts: float
    node_capacity: float
    current_nodes: int
    workloads: tuple[PoolWorkload, ...]
    min_nodes: int = 1
    max_nodes: int | None = None
    cost_per_node: float = 10.0
    sla_penalty: float = 500.0
    epsilon: float = 0.05

    def __post_init__(self) -> None:
        if not self.node_capacity > 0:
            raise InvalidPolicyInput(f"node_capacity must be positive, got {self.node_capacity}")
        if any(w.replica_request <= 0 for w in self.workloads):
            raise InvalidPolicyInput("every workload's replica_request must be positive")


def pool_demand_draws(inputs: PoolInput, seed: int) -> np.ndarray:
    """(draws, steps) capacity units the pool's workloads need; workloads without a forecast count
    their observed peak need (or current replicas) as certain."""
    rng = np.random.default_rng(seed)
    uniforms = rng.uniform(size=MONTE_CARLO_DRAWS)
    steps = max(
        (w.scaling.load_forecast.steps for w in inputs.workloads if w.scaling.load_forecast), default=1
    )
    demand = np.zeros((MONTE_CARLO_DRAWS, steps))
    for w in inputs.workloads:
        s = w.scaling
        if s.load_forecast is None:
            certain = float(max(s.observed_need() or 0, s.current_replicas, s.min_replicas))
            demand += certain * w.replica_request
            continue
        f = s.load_forecast
        load = f.inverse_cdf(uniforms)
        load = np.resize(load, (MONTE_CARLO_DRAWS, steps)) if load.shape[1] != steps else load
        need = np.maximum(np.ceil(load / s.usable_capacity - 1e-9), s.min_replicas)
        demand += need * w.replica_request
    return demand


class TwoStageScaler:
    """Pool size, then per-workload replicas that fit it."""

    policy_name = "bayesian_scaling_two_stage"

    def __init__(self, seed: int = 0, node_step: StepLimit | None = None) -> None:
        self.seed = seed
        self.node_step = node_step or StepLimit(max_up=10, max_down=2)
        self.workload_policy = BayesianScalingPolicy()

    def plan(self, inputs: PoolInput) -> list[Decision]:
        pool_decision = self._size_pool(inputs)
        capacity = pool_decision.params["nodes"] * inputs.node_capacity
        decisions = {w.scaling.workload: self.workload_policy.decide(w.scaling) for w in inputs.workloads}
        used = sum(
            decisions[w.scaling.workload].params["replicas"] * w.replica_request for w in inputs.workloads
        )
        for w in sorted(inputs.workloads, key=lambda w: w.priority):  # lowest priority trimmed first
            if used <= capacity + 1e-9:
                break
            d = decisions[w.scaling.workload]
            have = d.params["replicas"]
            floor = w.scaling.min_replicas
            cut = min(have - floor, math.ceil((used - capacity) / w.replica_request - 1e-9))
            if cut <= 0:
                continue
            d.params["replicas"] = have - cut
            d.action = (
                "scale_out"
                if have - cut > w.scaling.current_replicas
                else ("scale_in" if have - cut < w.scaling.current_replicas else "hold")
            )
            d.guardrails.append(
                GuardrailEffect(
                    "pool_capacity",
                    have,
                    have - cut,
                    f"pool {inputs.pool} holds {capacity:g} units; priority {w.priority}",
                )
            )
            used -= cut * w.replica_request
        return [pool_decision, *decisions.values()]

    def _size_pool(self, inputs: PoolInput) -> Decision:
        demand = pool_demand_draws(inputs, self.seed)
        top = float(demand.max())
        counts = np.arange(0, max(math.ceil(top / inputs.node_capacity) + 2, inputs.current_nodes + 1) + 1)
        over = np.stack([(demand > n * inputs.node_capacity).mean(axis=0) for n in counts])  # (n, steps)
        risk, mean_risk = over.max(axis=1), over.mean(axis=1)
        cost = counts * inputs.cost_per_node + inputs.sla_penalty * mean_risk
        feasible = risk <= inputs.epsilon
        wanted = (
            int(counts[int(np.argmin(np.where(feasible, cost, np.inf)))])
            if feasible.any()
            else int(counts[-1])
        )
        ctx = GuardrailContext(inputs.now_ts, inputs.current_nodes)
        effects: list[GuardrailEffect] = []
        nodes = wanted
        for step in (self.node_step, MinMax(inputs.min_nodes, inputs.max_nodes)):
            nodes, effect = step.apply(nodes, ctx)
            if effect is not None:
                effects.append(effect)
        current = inputs.current_nodes
        return Decision(
            kind="scaling",
            target=inputs.pool,
            action="scale_out" if nodes > current else "scale_in" if nodes < current else "hold",
            params={"nodes": nodes, "previous_nodes": current},
            policy=self.policy_name,
            forecast={
                "demand_quantiles": {
                    f"q{q:g}": np.quantile(demand, q, axis=0).round(6).tolist() for q in (0.5, 0.9, 0.99)
                }
            },
            candidates=[
                Candidate(
                    "set_nodes",
                    {"nodes": int(n)},
                    float(cost[n]),
                    float(risk[n]),
                    feasible=bool(feasible[n]),
                    note="chosen" if n == wanted else "",
                )
                for n in counts[max(wanted - 4, 0) : wanted + 5]
            ],
            guardrails=effects,
            details={"stage": "pool", "epsilon": inputs.epsilon, "wanted_nodes": wanted},
        )


def with_scaling(workload: PoolWorkload, **changes: object) -> PoolWorkload:
    """A copy of `workload` with its ScalingInput fields changed (tests and the replay use it)."""
    return replace(workload, scaling=replace(workload.scaling, **changes))  # type: ignore[arg-type]
