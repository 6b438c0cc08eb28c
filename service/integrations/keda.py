"""KEDA `metrics-api` answers: a workload's recommended replicas (KEDA `valueLocation: replicas`,
`targetValue: "1"`: with the default AverageValue target the HPA then runs exactly that many), or the load
it is forecast to carry (`valueLocation: target_metric.value`, `targetValue` = one replica's share:
`target_metric.per_replica_target`), so KEDA and the HPA act on Foresight's decisions.

Only decisions an operator let through count by default (approved or applied; `auto` mode applies at
once); `include_proposed` also follows proposals (shadow-style trials). Without one, the answer is the
workload's current replicas, so KEDA holds steady instead of failing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from forecasting.types import quantile_column
from policies.slo import ScalingSlo
from service import readings as read
from service.errors import DatabaseUnavailable, ForesightError
from service.forecasts import service as forecasts
from service.integrations import repository
from service.integrations.schemas import KedaOut, TargetMetric
from service.inventory import service as inventory
from service.models import Workload


def recommendation(
    session: Session, name: str, cluster: str | None, *, include_proposed: bool, horizon: int
) -> KedaOut:
    workload, cluster_name = inventory.find(session, Workload, name, cluster)
    statuses = ("approved", "applied", "proposed") if include_proposed else ("approved", "applied")
    decision = repository.latest_scaling_decision(session, workload, statuses)
    replicas = decision.params.get("replicas") if decision is not None else None
    out = KedaOut(
        workload=workload.name,
        cluster=cluster_name,
        current_replicas=workload.replicas,
        replicas=int(replicas) if isinstance(replicas, int | float) else workload.replicas,
        source="decision" if isinstance(replicas, int | float) else "workload",
    )
    if decision is not None and out.source == "decision":
        out.decision_id, out.status, out.policy = decision.id, decision.status, decision.policy
        out.decided_at = decision.created_at
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
