"""What Foresight would have saved: the Bayesian policy's replica-hours and SLA violations against HPA
(at the configured target, and retuned: the cheapest target of its sweep that violates the SLA no more
often than Foresight) and static peak,
in replica-hours and money (replica-hours x `cost_per_replica`, the cost of one replica for one hour)."""

from __future__ import annotations

from typing import Any

from policies.slo import ScalingSlo

FORESIGHT = "bayesian"


def _mean(table: dict[str, Any], policy: str, metric: str) -> float:
    return float(table[policy][metric]["mean"])


def curve_point(target: float, table: dict[str, Any]) -> dict[str, float]:
    return {
        "target": target,
        "replica_hours": _mean(table, "hpa", "replica_hours"),
        "sla_violation_rate": _mean(table, "hpa", "sla_violation_rate"),
    }


def _against(hours: float, violations: float, other_hours: float, other_violations: float,
             cost: float) -> dict[str, float | None]:  # fmt: skip
    saved = other_hours - hours
    return {
        "replica_hours": other_hours,
        "sla_violation_rate": other_violations,
        "replica_hours_saved": saved,
        "percent_saved": 100.0 * saved / other_hours if other_hours > 0 else None,
        "money_saved": saved * cost,
        "violation_rate_change": violations - other_violations,
    }


def retuned(curve: list[dict[str, float]], violations: float) -> dict[str, float] | None:
    """HPA retuned to be as good as Foresight: the cheapest swept target whose violation rate is at
    most Foresight's; None when no swept target gets there."""
    good = [p for p in curve if p["sla_violation_rate"] <= violations + 1e-12]
    return min(good, key=lambda p: p["replica_hours"]) if good else None


def savings(table: dict[str, Any], curve: list[dict[str, float]], config: dict[str, Any]) -> dict[str, Any]:
    cost = float(config.get("scaling", {}).get("cost_per_replica", ScalingSlo().cost_per_replica))
    hours = _mean(table, FORESIGHT, "replica_hours")
    violations = _mean(table, FORESIGHT, "sla_violation_rate")
    out: dict[str, Any] = {
        "cost_per_replica": cost,
        "foresight": {"replica_hours": hours, "sla_violation_rate": violations},
    }
    for name in ("hpa", "static-peak"):
        if name in table:
            other = (_mean(table, name, "replica_hours"), _mean(table, name, "sla_violation_rate"))
            out[f"vs_{name.replace('-', '_')}"] = _against(hours, violations, *other, cost)
    best = retuned(curve, violations)
    out["vs_hpa_retuned"] = (
        None
        if best is None
        else {"target": best["target"], **_against(hours, violations, best["replica_hours"],
                                                     best["sla_violation_rate"], cost)}
    )  # fmt: skip
    return out
