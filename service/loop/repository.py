"""SQL of the control loop: keep one target row per managed workload, power domain and node with an
open event; claim due targets without two replicas taking the same one; the kill switches; actuation
attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from service.models import Actuation, Cluster, Decision, LoopTarget, Node, NodeEvent, PowerDomain, Workload
from service.models.base import utcnow

ENTITY_OF: dict[str, type[Workload] | type[PowerDomain] | type[Node]] = {
    "workload": Workload,
    "power_domain": PowerDomain,
    "node": Node,
}
GLOBAL = ("global", 0)


def managed(session: Session) -> list[tuple[str, int, int]]:
    """(kind, id, cluster id) of everything the loop decides for: workloads it can size (a replica
    capacity is set), power domains with a budget, nodes with an event not yet resolved."""
    workloads = session.execute(
        select(Workload.id, Workload.cluster_id).where(Workload.replica_capacity.is_not(None))
    ).all()
    domains = session.execute(
        select(PowerDomain.id, PowerDomain.cluster_id).where(PowerDomain.budget_watts.is_not(None))
    ).all()
    nodes = session.execute(
        select(Node.id, Node.cluster_id).where(
            Node.id.in_(select(NodeEvent.node_id).where(NodeEvent.resolved_at.is_(None)))
        )
    ).all()
    return (
        [("workload", i, c) for i, c in workloads]
        + [("power_domain", i, c) for i, c in domains]
        + [("node", i, c) for i, c in nodes]
    )


def sync_targets(session: Session, now: datetime) -> tuple[int, int]:
    """Add rows for newly managed targets (due at once); drop rows of targets no longer managed unless
    an operator configured them (cadence, actuator or a freeze). Returns (added, removed)."""
    wanted = {(k, i): c for k, i, c in managed(session)}
    rows = session.execute(
        select(
            LoopTarget.id,
            LoopTarget.target_kind,
            LoopTarget.target_id,
            LoopTarget.cadence_seconds,
            LoopTarget.actuator,
            LoopTarget.frozen,
        )
    ).all()
    have = {(r.target_kind, r.target_id) for r in rows}
    added = [
        LoopTarget(target_kind=k, target_id=i, cluster_id=c, next_due_at=now, last_detail={})
        for (k, i), c in wanted.items()
        if (k, i) not in have
    ]
    session.add_all(added)
    stale = [
        r.id
        for r in rows
        if (r.target_kind, r.target_id) not in wanted
        and (r.target_kind, r.target_id) != GLOBAL
        and r.cadence_seconds is None
        and r.actuator is None
        and not r.frozen
    ]
    if stale:
        session.execute(delete(LoopTarget).where(LoopTarget.id.in_(stale)))
    session.flush()
    return len(added), len(stale)


def claim_due(session: Session, now: datetime, limit: int, lease: timedelta, owner: str) -> list[LoopTarget]:
    """Due targets nobody holds, leased to `owner`. On Postgres the rows are locked with `FOR UPDATE SKIP
    LOCKED` while the lease is written, so concurrent replicas claim disjoint sets."""
    query = (
        select(LoopTarget)
        .where(LoopTarget.target_kind != "global", LoopTarget.next_due_at <= now)
        .where(or_(LoopTarget.lease_until.is_(None), LoopTarget.lease_until < now))
        .order_by(LoopTarget.next_due_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    for row in rows:
        row.lease_until, row.lease_owner = now + lease, owner
    session.flush()
    return rows


def release(
    session: Session,
    target_id: int,
    owner: str,
    *,
    next_due: datetime,
    status: str,
    detail: dict[str, Any],
    data_at: datetime | None,
    ran_at: datetime,
    live_decision_id: int | None = None,
) -> None:
    """Record a target's pass and hand it back (only when `owner` still holds it)."""
    values: dict[str, Any] = {
        "next_due_at": next_due,
        "lease_until": None,
        "lease_owner": None,
        "last_run_at": ran_at,
        "last_status": status,
        "last_detail": detail,
    }
    if data_at is not None:
        values["last_data_at"] = data_at
    if live_decision_id is not None:
        values["live_decision_id"] = live_decision_id
    session.execute(
        update(LoopTarget).where(LoopTarget.id == target_id, LoopTarget.lease_owner == owner).values(**values)
    )


def target_row(session: Session, kind: str, entity_id: int, cluster_id: int | None) -> LoopTarget:
    """The target's row, created when missing (an operator may configure a target before it is managed)."""
    row = session.scalars(
        select(LoopTarget).where(LoopTarget.target_kind == kind, LoopTarget.target_id == entity_id)
    ).first()
    if row is None:
        row = LoopTarget(
            target_kind=kind, target_id=entity_id, cluster_id=cluster_id, next_due_at=utcnow(), last_detail={}
        )
        session.add(row)
        session.flush()
    return row


def target_of_decision(session: Session, row: Decision) -> LoopTarget | None:
    """The loop target a decision is about (matched by kind, cluster and name)."""
    kind = {
        "scaling": "workload",
        "rightsizing": "workload",
        "energy": "workload",
        "power": "power_domain",
        "oversubscription": "power_domain",
        "mitigation": "node",
    }.get(row.kind)
    if kind is None:
        return None
    model = ENTITY_OF[kind]
    return session.scalars(
        select(LoopTarget)
        .join(model, and_(LoopTarget.target_kind == kind, LoopTarget.target_id == model.id))
        .where(model.cluster_id == row.cluster_id, model.name == row.target_name)
    ).first()


def _served_statement(in_cluster: bool) -> Select[Decision]:
    """Built once: the endpoint's fast path should not pay for building the expression on every call."""
    query = (
        select(Decision)
        .join(LoopTarget, LoopTarget.live_decision_id == Decision.id)
        .join(Workload, and_(LoopTarget.target_kind == "workload", LoopTarget.target_id == Workload.id))
        .where(Workload.name == bindparam("workload"), LoopTarget.last_run_at >= bindparam("since"))
        .where(Decision.status.in_(("proposed", "approved", "applied")))
        .where(or_(Decision.expires_at.is_(None), Decision.expires_at > bindparam("now")))
        .limit(2)
    )
    if in_cluster:
        query = query.join(Cluster, Cluster.id == Workload.cluster_id).where(
            Cluster.name == bindparam("cluster")
        )
    return query


_SERVED_ANY_CLUSTER = _served_statement(False)
_SERVED_IN_CLUSTER = _served_statement(True)


def served_decision(
    session: Session, workload: str, cluster: str | None, since: datetime, now: datetime
) -> Decision | None:
    """The loop's live decision for the workload called `workload` (in `cluster` when given) when its
    last pass, at or after `since`, made or confirmed it and it is still in force at `now`. One indexed
    lookup, the recommendation endpoint's fast path; None when the name is ambiguous."""
    values: dict[str, object] = {"workload": workload, "since": since, "now": now}
    if cluster is not None:
        values["cluster"] = cluster
    statement = _SERVED_ANY_CLUSTER if cluster is None else _SERVED_IN_CLUSTER
    rows = list(session.scalars(statement, values))
    return rows[0] if len(rows) == 1 else None


def global_switch(session: Session) -> LoopTarget | None:
    return session.scalars(
        select(LoopTarget).where(LoopTarget.target_kind == GLOBAL[0], LoopTarget.target_id == GLOBAL[1])
    ).first()


def list_targets(session: Session, limit: int, offset: int) -> list[LoopTarget]:
    return list(session.scalars(select(LoopTarget).order_by(LoopTarget.id).limit(limit).offset(offset)))


def add_attempt(session: Session, attempt: Actuation) -> Actuation:
    session.add(attempt)
    session.flush()
    return attempt


def attempts_of(session: Session, decision_ids: Sequence[int]) -> dict[int, list[Actuation]]:
    if not decision_ids:
        return {}
    out: dict[int, list[Actuation]] = {}
    rows = session.scalars(
        select(Actuation)
        .where(Actuation.decision_id.in_(list(decision_ids)))
        .order_by(Actuation.decision_id, Actuation.attempt)
    )
    for row in rows:
        out.setdefault(row.decision_id, []).append(row)
    return out


def recent_changes(
    session: Session, cluster_id: int | None, target: str, since: datetime
) -> list[tuple[datetime, int]]:
    """Replica changes actuated on a workload since `since`: (when, replicas added (+) / removed (-))."""
    rows = session.execute(
        select(Actuation.finished_at, Actuation.observed)
        .join(Decision, Decision.id == Actuation.decision_id)
        .where(Decision.kind == "scaling", Decision.cluster_id == cluster_id, Decision.target_name == target)
        .where(Actuation.status == "applied", Actuation.dry_run.is_(False), Actuation.finished_at >= since)
    ).all()
    return [(ts, int(obs.get("change", 0))) for ts, obs in rows if isinstance(obs, dict)]


def pending_actuation(session: Session, now: datetime, limit: int) -> list[int]:
    """Approved decisions not yet carried out and not expired (the loop retries them)."""
    return list(
        session.scalars(
            select(Decision.id)
            .where(Decision.status == "approved")
            .where(or_(Decision.expires_at.is_(None), Decision.expires_at > now))
            .order_by(Decision.id)
            .limit(limit)
        )
    )
