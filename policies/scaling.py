"""Bayesian replica scaling (HARMONY): the cheapest replica count that keeps P(overload) ≤ ε.

For each candidate count n the policy computes, from the load forecast of the next window and the
per-replica capacity reduced by the interference forecast,

    risk(n) = max over steps t of P(L_t > n · c · (1 - d_t) · u)       (u: target utilisation)
    cost(n) = n · cost_per_replica + penalty · mean_t P(L_t > n · c · (1 - d_t) · u)

exactly from the forecast quantiles (interpolated CDF, exponential tails); an interference forecast
enters by quadrature over its quantile function (64 equal-probability points), so the answer is
deterministic and exact for a single-valued slowdown. It picks
the n with the lowest cost among those with risk(n) ≤ ε (the smallest n meeting ε when cost alone would go
lower), with ε and the penalty adapted from observed violations (`policies.adaptive`). The guardrail
chain then clamps the answer. Without a load forecast it falls back to a reactive rule that sizes for the
observed peak with headroom and never scales in, and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from policies.adaptive import AdaptedRisk, ViolationHistory, adapt_risk
from policies.distribution import QuantileForecast
from policies.guardrails import GuardrailContext, StepLimit, default_chain
from policies.skill import persistence_forecast, proactive_weight
from policies.slo import DEFAULT_SLO, ScalingSlo
from policies.types import BasePolicy, Candidate, Decision, GuardrailEffect, InvalidPolicyInput, register

DEGRADATION_POINTS = 64
"""Quadrature points of the degradation distribution in the scaling risk."""


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
    target_utilisation: float = DEFAULT_SLO.target_utilisation
    epsilon: float = DEFAULT_SLO.epsilon
    cost_per_replica: float = DEFAULT_SLO.cost_per_replica
    sla_penalty: float = DEFAULT_SLO.sla_penalty
    violations: ViolationHistory | None = None
    recent_recommendations: tuple[tuple[float, int], ...] = ()
    """(timestamp, replicas) of this workload's recent recommendations, for stabilization/HPA baselines."""
    backlog: float = 0.0
    """Work queued now, in load units x seconds (requests waiting, for a requests/s load)."""
    drain_seconds: float | None = None
    """Time to clear the backlog in; None: over the forecast window (or one observation step)."""
    risk_note: str | None = None
    """How `epsilon` was chosen, when a caller tuned it (the SLO budget controller); None: as stated."""
    forecast_skill: float | None = None
    """Live loss ratio of the load forecast against persistence (`policies.skill`; < 1: the forecast is
    better); None: not tracked, the forecast is trusted alone."""

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

    @classmethod
    def with_slo(cls, slo: ScalingSlo, **values: Any) -> ScalingInput:
        """An input whose objective fields come from `slo` (the one parser of a workload's settings)."""
        objective: dict[str, Any] = {
            "target_utilisation": slo.target_utilisation,
            "cost_per_replica": slo.cost_per_replica,
            "sla_penalty": slo.sla_penalty,
        }
        if "epsilon" not in values:
            objective["epsilon"] = slo.epsilon
        return cls(**objective, **values)

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
    """Risk and expected cost of every replica count from 0 to `n_max`."""

    counts: np.ndarray
    risk: np.ndarray
    mean_risk: np.ndarray
    expected_cost: np.ndarray


def degradation_points(
    forecast: QuantileForecast | None, steps: int, points: int = DEGRADATION_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """The degradation distribution as `points` equal-probability midpoints of its quantile function
    (exponential tails included, clipped to [0, 0.95]), identical ones merged: (values (m, steps),
    weights (m,)). No forecast is a single point at 0 (healthy capacity)."""
    if forecast is None:
        return np.zeros((1, steps)), np.ones(1)
    u = (np.arange(points) + 0.5) / points
    d = np.clip(forecast.inverse_cdf(u), 0.0, 0.95)
    d = d[:, np.arange(steps) % d.shape[1]]  # a shorter forecast repeats over the load window
    values, counts = np.unique(d, axis=0, return_counts=True)
    return values, counts / points


def replica_risk(inputs: ScalingInput, penalty: float, n_max: int) -> ReplicaRisk:
    """risk(n) and cost(n) for n = 0..n_max (see module docstring).

    With D the degradation and L the load at step t (independent), P(L + backlog rate > n·c·u·(1 - D))
    is the mean over D's quadrature points of the load forecast's exact exceedance at the shrunk
    threshold: deterministic (no sampling noise) and exact when D is a single value."""
    assert inputs.load_forecast is not None
    f = inputs.load_forecast
    counts = np.arange(n_max + 1)
    extra = inputs.backlog_rate  # the queue drains on top of the arrivals
    d, weights = degradation_points(inputs.degradation_forecast, f.steps)
    # thresholds[n, k, t] = n * usable * (1 - d[k, t]) - extra
    thresholds = counts[:, None, None] * inputs.usable_capacity * (1.0 - d)[None, :, :] - extra
    rows = np.broadcast_to(f.values, (len(counts), len(weights), *f.values.shape))
    exceed = f.exceedance_at(rows.reshape(-1, f.values.shape[1]), thresholds.reshape(-1))
    per_step = np.einsum("k,nkt->nt", weights, exceed.reshape(thresholds.shape))
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
        max_candidates_shown: int = 12,
        reactive_floor: bool = True,
    ) -> None:
        self.reactive_floor = reactive_floor
        self.stabilization_seconds = stabilization_seconds
        # a mapping comes from JSON/YAML configuration (the replay's `scaling.bayesian`)
        self.step_limit = (
            StepLimit(**step_limit) if isinstance(step_limit, Mapping) else step_limit or StepLimit()
        )
        self.max_candidates_shown = max_candidates_shown

    def decide(self, inputs: ScalingInput) -> Decision:
        risk_budget = adapt_risk(inputs.epsilon, inputs.sla_penalty, inputs.violations)
        tracked = inputs.forecast_skill is not None
        reactive_fc = (
            self._persistence(inputs, risk_budget.epsilon) if tracked or not inputs.load_forecast else None
        )
        if inputs.load_forecast is None and reactive_fc is None:
            return reactive_fallback(inputs, self.name, "no load forecast available")
        guardrails: list[GuardrailEffect] = []
        proactive = self._choose(inputs, inputs.load_forecast, risk_budget, guardrails)
        reactive = self._choose(inputs, reactive_fc, risk_budget, guardrails)
        # without enough history to certify ε, the reactive answer holds (scales out on what is seen)
        held = max(inputs.current_replicas, inputs.observed_need() or 0)
        if proactive is None:
            weight, control = 0.0, "reactive: no load forecast"
        elif not tracked:
            weight, control = 1.0, "proactive: forecast skill not tracked"
        else:
            weight = proactive_weight(inputs.forecast_skill)
            control = "proactive" if weight >= 0.8 else "reactive" if weight <= 0.2 else "blend"
            if reactive is None:
                control += " (reactive side holds: too little history)"
        n_p = proactive[0] if proactive is not None else 0
        n_r = reactive[0] if reactive is not None else held
        wanted = math.ceil(weight * n_p + (1.0 - weight) * n_r - 1e-9)
        table = (proactive or reactive)[1]  # type: ignore[index]
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
            fallback_reason=None if proactive is not None else "no load forecast available: reactive control",
            forecast={
                "load": (inputs.load_forecast or reactive_fc).summary(),  # type: ignore[union-attr]
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
                "risk_adaptation": inputs.risk_note or risk_budget.reason,
                "usable_capacity_per_replica": inputs.usable_capacity,
                "backlog": inputs.backlog,
                "backlog_rate": inputs.backlog_rate,
                "control": control,
                "forecast_skill": inputs.forecast_skill,
                "proactive_weight": weight,
                "proactive_replicas": proactive[0] if proactive is not None else None,
                "reactive_replicas": n_r if proactive is None or tracked else None,
            },
        )

    @staticmethod
    def _persistence(inputs: ScalingInput, epsilon: float) -> QuantileForecast | None:
        """The reactive controller's forecast, on the model forecast's window and levels when there is one."""
        f = inputs.load_forecast
        if f is None:
            return persistence_forecast(
                inputs.observed_load, 1, epsilon, step_seconds=inputs.observed_step_seconds
            )
        return persistence_forecast(inputs.observed_load, f.steps, epsilon, f.levels, f.step_seconds)

    @staticmethod
    def _choose(
        inputs: ScalingInput,
        forecast: QuantileForecast | None,
        risk_budget: AdaptedRisk,
        guardrails: list[GuardrailEffect],
    ) -> tuple[int, ReplicaRisk] | None:
        """The cheapest count whose risk under `forecast` meets ε (the largest searched when none does)."""
        if forecast is None:
            return None
        sized = replace(inputs, load_forecast=forecast)
        table = replica_risk(sized, risk_budget.penalty, _search_limit(sized))
        feasible = table.risk <= risk_budget.epsilon
        if feasible.any():
            return int(table.counts[int(np.argmin(np.where(feasible, table.expected_cost, np.inf)))]), table
        wanted = int(table.counts[-1])
        if not any(g.name == "risk_unreachable" for g in guardrails):
            reason = f"no count up to {wanted} meets ε={risk_budget.epsilon:.3g}"
            guardrails.append(GuardrailEffect("risk_unreachable", None, wanted, reason))
        return wanted, table

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
