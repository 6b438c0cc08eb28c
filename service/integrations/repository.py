"""SQL of the exports: the series forecasters cover, the latest live decision per target, workloads.
Callers own the transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from service.forecasts import repository as registry
from service.forecasts.service import FORECASTER
from service.models import Cluster, Decision, Series, Workload

LIVE_STATUSES = ("proposed", "approved", "applied")


def covered_series(
    session: Session, limit: int, cluster: str | None = None, metric: str | None = None
) -> list[tuple[Series, str]]:
    """Series some trained forecaster covers (newest models first), with their cluster names."""
    wanted: list[int] = []
    for row in registry.list_models(session, kind=FORECASTER, limit=500):
        for entry in row.params.get("series", []):
            if entry[0] not in wanted:
                wanted.append(int(entry[0]))
    if not wanted:
        return []
    query = select(Series, Cluster.name).join(Cluster, Cluster.id == Series.cluster_id)
    query = query.where(Series.id.in_(wanted))
    if cluster is not None:
        query = query.where(Cluster.name == cluster)
    if metric is not None:
        query = query.where(Series.metric == metric)
    rows = {row[0].id: (row[0], row[1]) for row in session.execute(query).all()}
    return [rows[sid] for sid in wanted if sid in rows][:limit]


def latest_decisions(session: Session, cluster: str | None = None, limit: int = 5000) -> list[Any]:
    """(decision, cluster name) of the newest live decision per (kind, target, cluster)."""
    query = (
        select(Decision, Cluster.name)
        .outerjoin(Cluster, Cluster.id == Decision.cluster_id)
        .where(Decision.status.in_(LIVE_STATUSES))
        .order_by(Decision.created_at.desc(), Decision.id.desc())
        .limit(limit)
    )
    if cluster is not None:
        query = query.where(Cluster.name == cluster)
    seen: set[tuple[str, str, str, int | None]] = set()
    out = []
    for decision, cluster_name in session.execute(query).all():
        key = (decision.kind, decision.target_kind, decision.target_name, decision.cluster_id)
        if key not in seen:
            seen.add(key)
            out.append((decision, cluster_name))
    return out


def workloads(session: Session, cluster: str | None = None) -> list[Any]:
    query = select(Workload, Cluster.name).join(Cluster, Cluster.id == Workload.cluster_id)
    if cluster is not None:
        query = query.where(Cluster.name == cluster)
    return list(session.execute(query.order_by(Cluster.name, Workload.name)).all())


def latest_scaling_decision(
    session: Session, workload: Workload, statuses: tuple[str, ...], live_at: datetime | None = None
) -> Decision | None:
    """The workload's newest scaling decision in `statuses` (unexpired at `live_at` when given)."""
    query = (
        select(Decision)
        .where(Decision.kind == "scaling", Decision.target_kind == "workload")
        .where(Decision.target_name == workload.name, Decision.cluster_id == workload.cluster_id)
        .where(Decision.status.in_(statuses))
        .order_by(Decision.created_at.desc(), Decision.id.desc())
        .limit(1)
    )
    if live_at is not None:
        query = query.where(or_(Decision.expires_at.is_(None), Decision.expires_at > live_at))
    return session.scalars(query).first()
