"""Bayesian replica scaling (HARMONY): the cheapest replica count that keeps P(overload) ≤ ε.

For each candidate count n the policy computes, from the load forecast of the next window and the
per-replica capacity reduced by the interference forecast,

    risk(n) = max over steps t of P(L_t > n · c · (1 - d_t) · u)       (u: target utilisation)
    cost(n) = n · cost_per_replica + penalty · mean_t P(L_t > n · c · (1 - d_t) · u)

exactly from the forecast quantiles (interpolated CDF, exponential tails), or by seeded Monte Carlo when
an interference forecast multiplies in (so the same input gives the same Decision). It picks
the n with the lowest cost among those with risk(n) ≤ ε (the smallest n meeting ε when cost alone would go
lower), with ε and the penalty adapted from observed violations (`policies.adaptive`). The guardrail
chain then clamps the answer. Without a load forecast it falls back to a reactive rule that sizes for the
observed peak with headroom and never scales in, and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from policies.adaptive import ViolationHistory, adapt_risk
from policies.distribution import QuantileForecast
from policies.guardrails import GuardrailContext, StepLimit, default_chain
from policies.types import BasePolicy, Candidate, Decision, GuardrailEffect, InvalidPolicyInput, register

MONTE_CARLO_DRAWS = 4000


@dataclass(frozen=True)
class ScalingInput:
    """Everything a scaling policy may read about one workload at `now_ts`."""

    workload: str
    now_ts: float
    current_replicas: int
    replica_capacity: float
    """Load one replica serves at 100 % (requests/s, CPU cores, ... — the load series' unit)."""
    load_forecast: QuantileForecast | None = None
    observed_load: tuple[float, ...] = ()
    """Recent observed load, oldest first, one value per `observed_step_seconds`."""
    observed_step_seconds: float = 60.0
    degradation_forecast: QuantileForecast | None = None
    """Interference degradation d (0 = healthy; capacity is multiplied by 1 - d)."""
    min_replicas: int = 1
    max_replicas: int | None = None
    target_utilisation: float = 0.8
    epsilon: float = 0.05
    cost_per_replica: float = 1.0
    sla_penalty: float = 50.0
    violations: ViolationHistory | None = None
    recent_recommendations: tuple[tuple[float, int], ...] = ()
    """(timestamp, replicas) of this workload's recent recommendations, for stabilization/HPA baselines."""
    backlog: float = 0.0
    """Work queued now, in load units x seconds (requests waiting, for a requests/s load)."""
    drain_seconds: float | None = None
    """Time to clear the backlog in; None: over the forecast window (or one observation step)."""

    def __post_init__(self) -> None:
        problems = []
        if self.current_replicas < 0:
            problems.append(f"current_replicas must be >= 0, got {self.current_replicas}")
        if not (self.replica_capacity > 0 and math.isfinite(self.replica_capacity)):
            problems.append(f"replica_capacity must be a positive number, got {self.replica_capacity}")
        if not 0.0 < self.target_utilisation <= 1.0:
            problems.append(f"target_utilisation must lie in (0, 1], got {self.target_utilisation}")
        if not 0.0 < self.epsilon < 1.0:
            problems.append(f"epsilon must lie in (0, 1), got {self.epsilon}")
        if self.min_replicas < 0 or (self.max_replicas is not None and self.max_replicas < self.min_replicas):
            problems.append(
                f"need 0 <= min_replicas <= max_replicas, got {self.min_replicas}..{self.max_replicas}"
            )
        if any(not math.isfinite(v) or v < 0 for v in self.observed_load):
            problems.append("observed_load must hold finite, non-negative numbers")
        if not (math.isfinite(self.backlog) and self.backlog >= 0):
            problems.append(f"backlog must be a finite number >= 0, got {self.backlog}")
        if self.drain_seconds is not None and not self.drain_seconds > 0:
            problems.append(f"drain_seconds must be > 0, got {self.drain_seconds}")
        if problems:
            raise InvalidPolicyInput("; ".join(problems))

    @property
    def usable_capacity(self) -> float:
        return self.replica_capacity * self.target_utilisation

    def replicas_for(self, load: float) -> int:
        """Replicas needed to serve `load` at the target utilisation."""
        return max(math.ceil(load / self.usable_capacity - 1e-9), 0)

    @property
    def backlog_rate(self) -> float:
        """Load the backlog adds while it drains: backlog / drain time (0 without a backlog)."""
        if not self.backlog:
            return 0.0
        if self.drain_seconds is not None:
            span = self.drain_seconds
        elif self.load_forecast is not None:
            span = self.load_forecast.steps * self.load_forecast.step_seconds
        else:
            span = self.observed_step_seconds
        return self.backlog / span

    def observed_need(self, lookback: int = 5) -> int | None:
        """Replicas the peak of the last `lookback` observations, plus the backlog draining, needs (None
        without observations)."""
        if not self.observed_load:
            return None
        return self.replicas_for(max(self.observed_load[-lookback:]) + self.backlog_rate)


@dataclass(frozen=True)
class ReplicaRisk:
    """Risk and expected cost of every replica count from 0 to `n_max`, from Monte Carlo draws."""

    counts: np.ndarray
    risk: np.ndarray
    mean_risk: np.ndarray
    expected_cost: np.ndarray


def replica_risk(inputs: ScalingInput, penalty: float, n_max: int, seed: int = 0) -> ReplicaRisk:
    """risk(n) and cost(n) for n = 0..n_max (see module docstring)."""
    assert inputs.load_forecast is not None
    counts = np.arange(n_max + 1)
    extra = inputs.backlog_rate  # the queue drains on top of the arrivals: P(L_t + extra > n * usable)
    if inputs.degradation_forecast is None:  # exact: P(L_t > n * usable) straight from the quantiles
        f = inputs.load_forecast
        rows = np.tile(f.values, (len(counts), 1))
        thresholds = np.repeat(counts * inputs.usable_capacity - extra, f.steps)
        exact = f.exceedance_at(rows, thresholds).reshape(len(counts), f.steps)
        return _risk_table(inputs, penalty, counts, exact)
    rng = np.random.default_rng(seed)
    load = inputs.load_forecast.draws(MONTE_CARLO_DRAWS, rng) + extra  # (draws, steps)
    steps = load.shape[1]
    if inputs.degradation_forecast is not None:
        deg = inputs.degradation_forecast.draws(MONTE_CARLO_DRAWS, rng)
        deg = np.resize(deg, (MONTE_CARLO_DRAWS, steps)) if deg.shape[1] != steps else deg
        factor = 1.0 - np.clip(deg, 0.0, 0.95)
    else:
        factor = np.ones_like(load)
    # replicas each draw needs; n serves the draw iff n >= need
    need = np.ceil(load / (inputs.usable_capacity * factor) - 1e-9)
    need.sort(axis=0)
    # P(need_t > n) per (n, step), by binary search in each step's sorted draws
    per_step = np.stack(
        [1.0 - np.searchsorted(need[:, t], counts, side="right") / need.shape[0] for t in range(steps)],
        axis=1,
    )
    return _risk_table(inputs, penalty, counts, per_step)


def _risk_table(
    inputs: ScalingInput, penalty: float, counts: np.ndarray, per_step: np.ndarray
) -> ReplicaRisk:
    risk = per_step.max(axis=1)
    mean_risk = per_step.mean(axis=1)
    cost = counts * inputs.cost_per_replica + penalty * mean_risk
    return ReplicaRisk(counts, risk, mean_risk, cost)


def _search_limit(inputs: ScalingInput) -> int:
    assert inputs.load_forecast is not None
    top = inputs.load_forecast.window_quantile(inputs.load_forecast.levels[-1]) + inputs.backlog_rate
    limit = inputs.replicas_for(top) * 2 + 2
    if inputs.max_replicas is not None:
        limit = max(min(limit, inputs.max_replicas * 2), inputs.max_replicas)
    return max(limit, inputs.current_replicas, inputs.min_replicas, 1)


def reactive_fallback(inputs: ScalingInput, policy: str, reason: str, headroom: float = 1.2) -> Decision:
    """Conservative answer without a usable forecast: observed peak x headroom, never scale in."""
    peak = max(inputs.observed_load[-10:]) if inputs.observed_load else 0.0
    wanted = max(inputs.replicas_for(peak * headroom), inputs.current_replicas)
    chain = default_chain(inputs.min_replicas, inputs.max_replicas, step=StepLimit())
    ctx = GuardrailContext(
        inputs.now_ts, inputs.current_replicas, inputs.recent_recommendations, inputs.observed_need()
    )
    final, effects = chain.apply(wanted, ctx)
    note = f"observed peak {peak:g} x {headroom:g} headroom"
    details = {"observed_peak": peak, "headroom": headroom}
    return one_choice_decision(inputs, policy, final, wanted, note, effects, reason, details)


def one_choice_decision(
    inputs: ScalingInput,
    policy: str,
    replicas: int,
    wanted: int,
    note: str,
    guardrails: list[GuardrailEffect],
    fallback: str | None,
    details: Mapping[str, object],
) -> Decision:
    """A scaling Decision of a rule that weighed one candidate (`wanted`) and ended at `replicas`."""
    return Decision(
        kind="scaling",
        target=inputs.workload,
        action=_action(inputs.current_replicas, replicas),
        params={"replicas": replicas, "previous_replicas": inputs.current_replicas},
        policy=policy,
        candidates=[
            Candidate(
                "set_replicas",
                {"replicas": wanted},
                float(wanted * inputs.cost_per_replica),
                float("nan"),
                note=note,
            )
        ],
        guardrails=guardrails,
        fallback_reason=fallback,
        details={"wanted_replicas": wanted, **details},
    )


def _action(current: int, replicas: int) -> str:
    return "scale_out" if replicas > current else "scale_in" if replicas < current else "hold"


@register("bayesian_scaling", "scaling")
class BayesianScalingPolicy(BasePolicy):
    """Minimise cost(n) + penalty · E[SLA violation | n] subject to P(overload) ≤ ε (adaptive ε)."""

    def __init__(
        self,
        stabilization_seconds: float = 300.0,
        step_limit: StepLimit | Mapping[str, Any] | None = None,
        seed: int = 0,
        max_candidates_shown: int = 12,
        reactive_floor: bool = False,
    ) -> None:
        self.reactive_floor = reactive_floor
        self.stabilization_seconds = stabilization_seconds
        # a mapping comes from JSON/YAML configuration (the replay's `scaling.bayesian`)
        self.step_limit = (
            StepLimit(**step_limit) if isinstance(step_limit, Mapping) else step_limit or StepLimit()
        )
        self.seed = seed
        self.max_candidates_shown = max_candidates_shown

    def decide(self, inputs: ScalingInput) -> Decision:
        if inputs.load_forecast is None:
            return reactive_fallback(inputs, self.name, "no load forecast available")
        risk_budget = adapt_risk(inputs.epsilon, inputs.sla_penalty, inputs.violations)
        table = replica_risk(inputs, risk_budget.penalty, _search_limit(inputs), self.seed)
        feasible = table.risk <= risk_budget.epsilon
        guardrails: list[GuardrailEffect] = []
        if feasible.any():
            costs = np.where(feasible, table.expected_cost, np.inf)
            wanted = int(table.counts[int(np.argmin(costs))])
        else:
            wanted = int(table.counts[-1])
            guardrails.append(
                GuardrailEffect(
                    "risk_unreachable",
                    None,
                    wanted,
                    f"no count up to {wanted} meets ε={risk_budget.epsilon:.3g}",
                )
            )
        chain = default_chain(
            inputs.min_replicas,
            inputs.max_replicas,
            self.stabilization_seconds,
            self.step_limit,
            self.reactive_floor,
        )
        ctx = GuardrailContext(
            inputs.now_ts,
            inputs.current_replicas,
            inputs.recent_recommendations,
            inputs.observed_need(),
            inputs.observed_need(lookback=1),
        )
        final, effects = chain.apply(wanted, ctx)
        guardrails.extend(effects)
        return Decision(
            kind="scaling",
            target=inputs.workload,
            action=_action(inputs.current_replicas, final),
            params={"replicas": final, "previous_replicas": inputs.current_replicas},
            policy=self.name,
            forecast={
                "load": inputs.load_forecast.summary(),
                "degradation": inputs.degradation_forecast.summary()
                if inputs.degradation_forecast is not None
                else None,
            },
            candidates=self._candidates(table, wanted, risk_budget.epsilon),
            guardrails=guardrails,
            details={
                "wanted_replicas": wanted,
                "risk_at_final": float(table.risk[min(final, len(table.risk) - 1)]),
                "epsilon_target": inputs.epsilon,
                "epsilon_used": risk_budget.epsilon,
                "penalty_used": risk_budget.penalty,
                "violation_rate_posterior_mean": risk_budget.posterior_mean,
                "risk_adaptation": risk_budget.reason,
                "usable_capacity_per_replica": inputs.usable_capacity,
                "backlog": inputs.backlog,
                "backlog_rate": inputs.backlog_rate,
            },
        )

    def _candidates(self, table: ReplicaRisk, wanted: int, epsilon: float) -> list[Candidate]:
        """The counts around the choice, so the explanation shows the trade-off without 1000 rows."""
        half = self.max_candidates_shown // 2
        lo, hi = max(wanted - half, 0), min(wanted + half, len(table.counts) - 1)
        return [
            Candidate(
                "set_replicas",
                {"replicas": int(n)},
                float(table.expected_cost[n]),
                float(table.risk[n]),
                feasible=bool(table.risk[n] <= epsilon),
                note="chosen" if n == wanted else "",
            )
            for n in range(lo, hi + 1)
        ]
