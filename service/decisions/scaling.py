"""Scaling and right-sizing recommendations: build the policy input from the workload's settings, its
load series, forecast, observed violations and recent decisions; decide; record with the evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from policies.adaptive import ViolationHistory, budget_epsilon
from policies.rightsizing import ResourceUsage, RightsizingInput
from policies.scaling import ScalingInput
from policies.slo import ScalingSlo
from policies.types import PolicyError, build_policy
from service import readings as read
from service.db import database_of
from service.decisions import repository as repo
from service.decisions import service as decisions
from service.decisions import workload_state as state
from service.decisions.lifecycle import LOOP_ACTOR
from service.decisions.schemas import DecisionOut, RightsizingRequest, ScalingRequest
from service.errors import Conflict, InvalidInput
from service.inventory import service as inventory
from service.models import Workload

VIOLATION_LOOKBACK = timedelta(days=7)
STABILIZATION_LOOKBACK = timedelta(minutes=30)
RESOURCE_METRICS = {
    "cpu": ("cpu_usage_cores", "cpu_cores", "cpu"),
    "memory": ("memory_usage_bytes", "memory_bytes", "memory"),
}


def recommend_scaling(session: Session, body: ScalingRequest, requested_by: str) -> DecisionOut:
    if requested_by != LOOP_ACTOR and _asks_what_the_loop_asks(body):
        served = state.fresh_loop_answer(session, body.workload, body.cluster, _cadence(session))
        if served is not None:
            return decisions.served_out(session, served)
    policy = decisions.policy_named(body.policy, "scaling")
    workload, cluster = inventory.find(session, Workload, body.workload, body.cluster)
    if workload.replica_capacity is None:
        raise Conflict(
            f"workload {workload.name!r} has no replica_capacity; set it (and capacity_metric) with "
            f"PUT /v1/workloads/{workload.name}"
        )
    metric = state.load_metric(workload)
    series = read.find_series(session, cluster, "workload", workload.name, metric)
    workload_slo = workload.slo or {}
    notes: list[str] = []
    if series is None:
        seen, forecast = read.Observed((), 60.0, None), None
        notes.append(f"workload {workload.name!r} has no {metric!r} series yet")
    else:
        seen = read.observed(session, series.id)
        forecast, why = read.forecast_window(session, series.id, body.horizon)
        if why:
            notes.append(why)
    queued, why = read.backlog(session, cluster, workload.name, seen)
    if why:
        notes.append(why)
    slowdown = None
    if workload.performance_metric:
        slowdown, why = read.degradation_window(
            session, cluster, workload.name, workload.performance_metric, body.horizon
        )
        if why:
            notes.append(why)
    now = datetime.now(UTC)
    windows, violations = repo.violation_counts(
        session, "scaling", workload.cluster_id, workload.name, now - VIOLATION_LOOKBACK
    )
    recent = repo.recent_wanted(
        session, "scaling", workload.cluster_id, workload.name, now - STABILIZATION_LOOKBACK
    )
    try:
        slo = ScalingSlo.from_mapping({**workload_slo, **({"epsilon": body.epsilon} if body.epsilon else {})})
        history = ViolationHistory(windows, min(violations, windows))
        risk: dict[str, Any] = {"violations": history}
        if not slo.epsilon_override:  # the objective's budget sets ε (the replay's controller, from counts)
            eps = budget_epsilon(slo.objective.budget, history, slo.epsilon)
            way = "tightened" if eps < slo.epsilon else "relaxed" if eps > slo.epsilon else "kept"
            note = f"ε {way} to spend the budget of {slo.objective.describe()} ({windows} reported window(s))"
            risk = {"epsilon": eps, "risk_note": note}
        inputs = ScalingInput.with_slo(
            slo,
            workload=workload.name,
            now_ts=now.timestamp(),
            current_replicas=workload.replicas,
            replica_capacity=workload.replica_capacity,
            load_forecast=forecast,
            observed_load=seen.values,
            observed_step_seconds=seen.step_seconds,
            min_replicas=workload.min_replicas,
            max_replicas=workload.max_replicas,
            **risk,
            recent_recommendations=tuple((ts.timestamp(), n) for ts, n in recent),
            backlog=queued,
            degradation_forecast=slowdown,
        )
        decision = policy.decide(inputs)
    except PolicyError as error:
        raise InvalidInput(f"cannot decide for workload {workload.name!r}: {error}") from error
    if notes and decision.fallback_reason and decision.fallback_reason.startswith("no load forecast"):
        decision.fallback_reason = "; ".join(notes)
    elif notes:
        decision.details["notes"] = notes
    if slowdown is not None and workload.performance_metric:
        decision.details["interference"] = read.interference_evidence(
            session, cluster, workload.name, workload.performance_metric
        )
    decision.details["load_series_id"] = series.id if series is not None else None
    decision.details["load_data_at"] = seen.last_ts
    state.apply_workload_behavior(session, workload, decision, now)
    step = forecast.step_seconds if forecast is not None else seen.step_seconds
    return decisions.record(
        session,
        decision,
        cluster_id=workload.cluster_id,
        target_kind="workload",
        mode=workload.mode,
        valid_for=timedelta(seconds=max(step * body.horizon, 60.0)),
        requested_by=requested_by,
        cluster_name=cluster,
    )


def _asks_what_the_loop_asks(body: ScalingRequest) -> bool:
    defaults = ScalingRequest(workload=body.workload)
    return (body.policy, body.epsilon, body.horizon) == (defaults.policy, defaults.epsilon, defaults.horizon)


def _cadence(session: Session) -> float:
    return database_of(session).settings.loop_cadence_seconds


def recommend_rightsizing(session: Session, body: RightsizingRequest, requested_by: str) -> DecisionOut:
    workload, cluster = inventory.find(session, Workload, body.workload, body.cluster)
    resources: dict[str, ResourceUsage] = {}
    requests = (workload.slo or {}).get("requests", {})
    for resource, metrics in RESOURCE_METRICS.items():
        series = next(
            (s for m in metrics if (s := read.find_series(session, cluster, "workload", workload.name, m))),
            None,
        )
        if series is None:
            continue
        pooled = read.per_pod_values(session, cluster, workload.name, series.metric)
        if pooled is not None:  # pod series (cAdvisor): each pod is one replica's usage
            resources[resource] = ResourceUsage(pooled, None, requests.get(resource))
            continue
        seen = read.observed(session, series.id, count=2000)
        forecast, _ = read.forecast_window(session, series.id, body.horizon)
        resources[resource] = ResourceUsage(seen.values, forecast, requests.get(resource))
    if not resources:
        names = ", ".join(m for ms in RESOURCE_METRICS.values() for m in ms)
        raise Conflict(f"workload {workload.name!r} has no per-replica usage series (one of: {names})")
    decision = build_policy("rightsizing").decide(RightsizingInput(workload.name, resources))
    return decisions.record(
        session,
        decision,
        cluster_id=workload.cluster_id,
        target_kind="workload",
        mode=workload.mode,
        valid_for=timedelta(hours=1),
        requested_by=requested_by,
        cluster_name=cluster,
    )
