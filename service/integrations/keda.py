"""KEDA `metrics-api` answers: a workload's recommended replicas (KEDA `valueLocation: replicas`,
`targetValue: "1"`: with the AverageValue target the HPA asks ceil(replicas / 1) replicas), or the load
it is forecast to carry (`valueLocation: target_metric.value`, `targetValue` = one replica's share:
`target_metric.per_replica_target`), so KEDA and the HPA act on Foresight's decisions.

Only unexpired decisions an operator let through count by default (approved or applied; `auto` mode
applies at once); `include_proposed` also follows proposals (shadow-style trials). Without one, the answer
is the workload's current replicas with `stale: true` and why, so KEDA holds steady instead of failing
or following a decision of last week. The HPA behind KEDA ignores a change within its tolerance (10 % by
default) and stacks its own stabilization: pair it with the behavior in docs/integrations.md
(tolerance 0, no stabilization window: Foresight's decision already carries both).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from forecasting.types import quantile_column
from policies.behavior import hpa_replicas_for_average_value
from policies.slo import ScalingSlo
from service import readings as read
from service.db import database_of
from service.decisions import actuation
from service.errors import DatabaseUnavailable, ForesightError
from service.forecasts import service as forecasts
from service.integrations import repository
from service.integrations.schemas import KedaOut, TargetMetric
from service.inventory import service as inventory
from service.models import Workload


def recommendation(
    session: Session, name: str, cluster: str | None, *, include_proposed: bool, horizon: int
) -> KedaOut:
    settings = database_of(session).settings
    workload, cluster_name = inventory.find(session, Workload, name, cluster)
    statuses = ("approved", "applied", "proposed") if include_proposed else ("approved", "applied")
    now = datetime.now(UTC)
    decision = repository.latest_scaling_decision(session, workload, statuses, live_at=now)
    replicas = decision.params.get("replicas") if decision is not None else None
    out = KedaOut(
        workload=workload.name,
        cluster=cluster_name,
        current_replicas=workload.replicas,
        replicas=int(replicas) if isinstance(replicas, int | float) else workload.replicas,
        source="decision" if isinstance(replicas, int | float) else "workload",
    )
    frozen = actuation.gate(session, settings, decision).frozen if decision is not None else None
    if frozen is not None:
        out.replicas, out.source, decision = workload.replicas, "workload", None
        out.stale, out.stale_reason = True, f"actuation is frozen ({frozen}); holding the current replicas"
    elif decision is not None and out.source == "decision":
        out.decision_id, out.status, out.policy = decision.id, decision.status, decision.policy
        out.decided_at, out.expires_at = decision.created_at, decision.expires_at
    else:
        out.stale = True
        last = repository.latest_scaling_decision(session, workload, statuses)
        out.stale_reason = (
            f"the newest decision (#{last.id}) expired at {last.expires_at:%Y-%m-%dT%H:%M:%SZ}; holding the "
            "current replicas"
            if last is not None and last.expires_at is not None
            else "no decision yet; holding the current replicas"
        )
    current = max(workload.replicas, 1)
    out.within_default_hpa_tolerance = out.replicas != workload.replicas and (
        hpa_replicas_for_average_value(out.replicas, 1.0, current) == current
    )
    out.target_metric = _target_metric(session, workload, cluster_name, horizon)
    return out


def _target_metric(session: Session, workload: Workload, cluster: str, horizon: int) -> TargetMetric | None:
    """The upper (1 - epsilon) forecast quantile of the load over the horizon, or its last value."""
    metric = workload.capacity_metric or "requests_per_second"
    series = read.find_series(session, cluster, "workload", workload.name, metric)
    if series is None:
        return None
    slo = ScalingSlo.from_mapping(workload.slo)
    per_replica = None
    if workload.replica_capacity is not None:
        per_replica = workload.replica_capacity * slo.target_utilisation
    wanted = 1.0 - slo.epsilon
    try:
        answer = forecasts.forecast(session, series.id, horizon)
    except DatabaseUnavailable:
        raise
    except ForesightError:
        seen = read.observed(session, series.id, count=1)
        if not seen.values:
            return None
        return TargetMetric(
            metric=metric,
            value=seen.values[-1],
            quantile=None,
            per_replica_target=per_replica,
            source="observed",
        )
    level = min(answer.levels, key=lambda q: abs(q - wanted))
    peak = float(answer.frame[quantile_column(level)].max())
    return TargetMetric(
        metric=metric, value=peak, quantile=level, per_replica_target=per_replica, source="forecast"
    )
