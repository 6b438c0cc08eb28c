"""Power capping per power domain (POLCA): keep P(domain total > budget) <= eps over the next window.

`power_polca` reads the forecast of the domain total and weighs an escalating ladder of cap plans built
from the profiled power-performance curves (policies/power_profiles.py): the lowest priority class at
ever lower GPU power limits, then the next class on top, and so on; the power brake last. Thresholds
follow POLCA, as chance constraints: no cap while P(total > T1) <= eps; above, low-priority plans are
tried first (the cheapest one keeping P(total > T1) <= eps, else the one closest to it that keeps T2);
only when low-priority caps cannot keep P(total > T2) <= eps are the top class capped too (the cheapest
plan meeting T2, else the budget); the brake is the last resort. Cost = expected throughput lost
(profile curves) weighted by priority, so among equally safe plans the cheapest wins.
Hysteresis: caps are relaxed only after `uncap_windows` consecutive windows in which the relaxed plan
keeps P(total > T1) <= eps and its median total below T_uncap (the count travels in
`details["calm_windows"]`); the brake is released the same way.

`power_reactive` is the forecast-free baseline and the fallback: POLCA's rule on the measured total now.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from policies.distribution import QuantileForecast
from policies.power_model import (
    DomainModel,
    Plan,
    PlanEval,
    PowerDomainInput,
    ServerState,
    demand_forecast,
    estimate_demand,
    ladder,
    priority_weights,
)
from policies.types import Candidate, Decision, GuardrailEffect, InvalidPolicyInput, register


def threshold_watts(budget: float, t1: float, t2: float, t_uncap: float) -> dict[str, float]:
    """The POLCA thresholds in watts for a domain budget (T1, T2 and the uncap level are fractions)."""
    return {"budget": budget, "T1": t1 * budget, "T2": t2 * budget, "uncap": t_uncap * budget}


def _check_thresholds(t1: float, t2: float, t_uncap: float, uncap_windows: int) -> None:
    if not 0.0 < t_uncap < t1 <= t2 <= 1.0:
        raise InvalidPolicyInput(f"thresholds need 0 < t_uncap < t1 <= t2 <= 1, got {t_uncap}, {t1}, {t2}")
    if uncap_windows < 1:
        raise InvalidPolicyInput(f"uncap_windows must be >= 1, got {uncap_windows}")


def _limit_or_inf(limit: float | None) -> float:
    return np.inf if limit is None else float(limit)


def current_plan(servers: tuple[ServerState, ...]) -> Plan:
    """The caps in force now, as a plan."""
    return Plan(
        "current", "current", tuple(s.power_limit_watts for s in servers), any(s.braked for s in servers)
    )


def relaxes(current: Plan, new: Plan) -> bool:
    """Whether `new` raises some server's limit (or releases the brake) relative to `current`."""
    if current.brake and not new.brake:
        return True
    if new.brake:
        return False
    return any(_limit_or_inf(n) > _limit_or_inf(c) for c, n in zip(current.limits, new.limits, strict=True))


def tighter(current: Plan, new: Plan) -> Plan:
    """Per server the lower of both limits (the brake stays on if either has it)."""
    limits = tuple(
        None if c is None and n is None else min(_limit_or_inf(c), _limit_or_inf(n))
        for c, n in zip(current.limits, new.limits, strict=True)
    )
    return Plan(f"{new.name}+held", "held", limits, current.brake or new.brake)


def action_of(current: Plan, new: Plan) -> str:
    """brake / cap (some limit lowered) / uncap (only raised) / hold."""
    if new.brake and not current.brake:
        return "brake"
    if new.brake:
        return "hold"
    lowered = any(
        _limit_or_inf(n) < _limit_or_inf(c) for c, n in zip(current.limits, new.limits, strict=True)
    )
    if lowered:
        return "cap"
    return "uncap" if relaxes(current, new) else "hold"


def candidate_of(ev: PlanEval, names: list[str], eps: float) -> Candidate:
    """A plan's evidence: capped servers, priority-weighted expected loss, P(total > budget)."""
    capped = {n: lim for n, lim in zip(names, ev.plan.limits, strict=True) if lim is not None}
    params: dict[str, Any] = {"stage": ev.plan.stage, "brake": ev.plan.brake, "power_limits_watts": capped}
    note = ", ".join(f"P(>{k})={v:.4f}" for k, v in ev.risks.items()) + f", lost GPUs={ev.lost_gpus:.3f}"
    return Candidate(ev.plan.name, params, ev.cost, ev.risks["budget"], ev.risks["budget"] <= eps, note)


def summary_details(inputs: PowerDomainInput, ev: PlanEval, eps: float) -> dict[str, Any]:
    """Per priority class: servers capped and expected throughput lost; headroom at risk eps."""
    capped: dict[str, int] = {}
    lost: dict[str, float] = {}
    for s, lim, loss in zip(inputs.servers, ev.plan.limits, ev.loss, strict=True):
        key = str(s.priority)
        capped[key] = capped.get(key, 0) + int(lim is not None or ev.plan.brake)
        lost[key] = lost.get(key, 0.0) + float(loss) * s.gpus
    return {
        "capped_by_priority": capped,
        "expected_lost_gpus_by_priority": {k: round(v, 6) for k, v in lost.items()},
        "headroom_watts": inputs.budget_watts - ev.total.window_quantile(1.0 - eps),
        "risk_after": ev.risks["budget"],
    }


@register("power_reactive", "power")
class ReactivePowerPolicy:
    """POLCA's reactive rule on measured power: above T1·budget cap the lower classes, above T2 cap all,
    above the budget brake; relax after `uncap_windows` windows below T_uncap. Needs no forecast."""

    def __init__(
        self,
        t1: float = 0.9,
        t2: float = 0.97,
        t_uncap: float = 0.8,
        uncap_windows: int = 3,
        cap_fraction: float = 0.7,
        priority_weight: float = 10.0,
    ) -> None:
        _check_thresholds(t1, t2, t_uncap, uncap_windows)
        if not 0.0 < cap_fraction <= 1.0:
            raise InvalidPolicyInput(f"cap_fraction must lie in (0, 1], got {cap_fraction}")
        self.t1, self.t2, self.t_uncap, self.uncap_windows = t1, t2, t_uncap, uncap_windows
        self.cap_fraction, self.priority_weight = cap_fraction, priority_weight

    def _limit(self, s: ServerState) -> float:
        lims = np.array(s.curve.limits)
        ok = lims[lims >= self.cap_fraction * s.curve.max_limit - 1e-9]
        return float(ok.min()) if len(ok) else float(lims.max())

    def decide(self, inputs: PowerDomainInput) -> Decision:
        servers, budget, eps = inputs.servers, inputs.budget_watts, inputs.epsilon
        names = [s.name for s in servers]
        measured, demand = estimate_demand(inputs)
        total = float(measured.sum())
        top = max(s.priority for s in servers)
        low = Plan("cap_low", "T1", tuple(self._limit(s) if s.priority < top else None for s in servers))
        plans = {
            "uncapped": Plan("uncapped", "none", (None,) * len(servers)),
            "cap_low": low,
            "cap_all": Plan("cap_all", "T2", tuple(self._limit(s) for s in servers)),
            "brake": Plan("brake", "brake", (None,) * len(servers), brake=True),
        }
        model = DomainModel(servers, demand)
        point = QuantileForecast.point(float(demand.sum()))
        thresholds = threshold_watts(budget, self.t1, self.t2, self.t_uncap)
        weights = priority_weights(servers, self.priority_weight)
        evals = {k: model.evaluate(p, point, thresholds, weights) for k, p in plans.items()}
        if total > budget:
            wanted, rule = "brake", "measured total above the budget"
        elif total > self.t2 * budget:
            wanted, rule = "cap_all", "measured total above T2"
        elif total > self.t1 * budget:
            wanted, rule = "cap_low", "measured total above T1"
        else:
            wanted, rule = "uncapped", "measured total below T1"
        now = current_plan(servers)
        desired = plans[wanted]
        guardrails: list[GuardrailEffect] = []
        calm = total < self.t_uncap * budget and relaxes(now, desired)
        calm_next = inputs.calm_windows + 1 if calm else 0
        final = desired
        if relaxes(now, desired) and calm_next < self.uncap_windows:
            final = tighter(now, desired)
            guardrails.append(
                GuardrailEffect(
                    "uncap_hysteresis",
                    desired.name,
                    "hold current caps",
                    f"relax only after {self.uncap_windows} consecutive windows below T_uncap "
                    f"({self.t_uncap:g}·budget); calm windows so far: {calm_next}",
                )
            )
        fev = model.evaluate(final, point, thresholds, weights)
        missing = inputs.missing_power
        return Decision(
            kind="power",
            target=inputs.domain,
            action=action_of(now, final),
            params=final.as_params(names),
            policy=type(self).name,  # type: ignore[attr-defined]
            forecast={"basis": "measured total now (no forecast)", "measured_total_watts": total},
            candidates=[candidate_of(evals[k], names, eps) for k in plans],
            guardrails=guardrails,
            fallback_reason=(
                f"no power reading for servers {missing}; assumed their nameplate" if missing else None
            ),
            details={
                "rule": rule,
                "budget_watts": budget,
                "thresholds_watts": thresholds,
                "epsilon": eps,
                "calm_windows": calm_next,
                **summary_details(inputs, fev, eps),
            },
        )


@register("power_polca", "power")
class PolcaPowerPolicy:
    """Forecast-driven, chance-constrained, priority-aware capping (module docstring)."""

    def __init__(
        self,
        t1: float = 0.9,
        t2: float = 0.97,
        t_uncap: float = 0.8,
        uncap_windows: int = 3,
        priority_weight: float = 10.0,
        brake_fraction: float = 0.7,
        brake_throughput: float = 0.3,
        max_forecast_gap: float = 0.5,
    ) -> None:
        _check_thresholds(t1, t2, t_uncap, uncap_windows)
        if priority_weight < 1.0:
            raise InvalidPolicyInput(f"priority_weight must be >= 1, got {priority_weight}")
        self.t1, self.t2, self.t_uncap, self.uncap_windows = t1, t2, t_uncap, uncap_windows
        self.priority_weight = priority_weight
        self.brake_fraction, self.brake_throughput = brake_fraction, brake_throughput
        self.max_forecast_gap = max_forecast_gap
        self.reactive = ReactivePowerPolicy(t1, t2, t_uncap, uncap_windows, priority_weight=priority_weight)

    def _fallback_reason(self, inputs: PowerDomainInput, measured: np.ndarray) -> str | None:
        if inputs.total_forecast is None:
            return "no forecast of the domain total; reactive rule on measured power"
        if inputs.missing_power:
            return f"no power reading for servers {inputs.missing_power}; reactive rule, nameplate assumed"
        first = float(inputs.total_forecast.median()[0])
        if abs(first - measured.sum()) > self.max_forecast_gap * max(measured.sum(), 1.0):
            return (
                f"forecast median {first:.0f} W is more than {self.max_forecast_gap:.0%} away from the "
                f"measured total {measured.sum():.0f} W (stale forecast?); reactive rule on measured power"
            )
        return None

    def _choose(self, evals: dict[str, PlanEval], eps: float) -> tuple[PlanEval, str]:
        """POLCA's escalation as chance constraints (module docstring)."""

        def cheapest(pool: list[PlanEval], key: str) -> PlanEval | None:
            ok = [e for e in pool if e.risks[key] <= eps]
            return min(ok, key=lambda e: (e.cost, e.risks["budget"])) if ok else None

        none = evals["uncapped"]
        if none.risks["T1"] <= eps:
            return none, "P(total > T1) <= eps without caps"
        low = [e for e in evals.values() if e.plan.stage == "T1"]
        pick = cheapest(low, "T1")
        if pick is not None:
            return pick, "low-priority caps keep P(total > T1) <= eps"
        meets_t2 = [e for e in [none, *low] if e.risks["T2"] <= eps]
        if meets_t2:
            best = min(meets_t2, key=lambda e: (e.risks["T1"], e.cost))
            return best, "low-priority caps keep P(total > T2) <= eps (T1 not reachable with them)"
        ladder_all = [e for e in evals.values() if e.plan.stage in ("T1", "T2")]
        for key, rule in (
            ("T2", "capping all keeps P(total > T2) <= eps"),
            ("budget", "capping all keeps P(total > budget) <= eps"),
        ):
            pick = cheapest(ladder_all, key)
            if pick is not None:
                return pick, rule
        return evals["brake"], "no cap plan keeps P(total > budget) <= eps: power brake"

    def decide(self, inputs: PowerDomainInput) -> Decision:
        measured, demand = estimate_demand(inputs)
        reason = self._fallback_reason(inputs, measured)
        if reason is not None:
            fallback = self.reactive.decide(inputs)
            fallback.policy = type(self).name  # type: ignore[attr-defined]
            fallback.fallback_reason = reason
            return fallback
        servers, budget, eps = inputs.servers, inputs.budget_watts, inputs.epsilon
        names = [s.name for s in servers]
        model = DomainModel(servers, demand, self.brake_fraction, self.brake_throughput)
        dem = demand_forecast(inputs, measured, demand)
        thresholds = threshold_watts(budget, self.t1, self.t2, self.t_uncap)
        weights = priority_weights(servers, self.priority_weight)
        plans = [
            Plan("uncapped", "none", (None,) * len(servers)),
            *ladder(servers),
            Plan("brake", "brake", (None,) * len(servers), brake=True),
        ]
        evals = {p.name: model.evaluate(p, dem, thresholds, weights) for p in plans}
        desired, rule = self._choose(evals, eps)
        guardrails: list[GuardrailEffect] = []
        if desired.plan.brake:
            mins = {s.profile: s.curve.min_limit for s in servers}
            guardrails.append(
                GuardrailEffect(
                    "min_power_limit",
                    "caps below the GPUs' lowest supported power limit",
                    "power brake",
                    f"even every GPU at its minimum limit {mins} leaves P(total > budget) > eps",
                )
            )
        now = current_plan(servers)
        wants_relax = relaxes(now, desired.plan)
        median = float(desired.total.median().max())
        calm = wants_relax and desired.risks["T1"] <= eps and median <= self.t_uncap * budget
        calm_next = inputs.calm_windows + 1 if calm else 0
        final = desired
        if wants_relax and calm_next < self.uncap_windows:
            final = model.evaluate(tighter(now, desired.plan), dem, thresholds, weights)
            guardrails.append(
                GuardrailEffect(
                    "uncap_hysteresis",
                    desired.plan.name,
                    final.plan.name,
                    f"caps are relaxed only after {self.uncap_windows} consecutive windows with "
                    f"P(total > T1) <= eps and the median below T_uncap={self.t_uncap:g}·budget; "
                    f"calm windows so far: {calm_next}",
                )
            )
        uncapped = evals["uncapped"]
        return Decision(
            kind="power",
            target=inputs.domain,
            action=action_of(now, final.plan),
            params=final.plan.as_params(names),
            policy=type(self).name,  # type: ignore[attr-defined]
            forecast={
                "basis": inputs.forecast_basis,
                "demand_scale": float(demand.sum() / max(measured.sum(), 1e-9)),
                "demand_total": dem.summary(),
                "capped_total": final.total.summary(),
            },
            candidates=[candidate_of(e, names, eps) for e in evals.values()],
            guardrails=guardrails,
            details={
                "rule": rule,
                "budget_watts": budget,
                "thresholds_watts": thresholds,
                "epsilon": eps,
                "calm_windows": calm_next,
                "risk_uncapped": uncapped.risks["budget"],
                "measured_total_watts": float(measured.sum()),
                "now_ts": inputs.now_ts,
                **summary_details(inputs, final, eps),
            },
        )
