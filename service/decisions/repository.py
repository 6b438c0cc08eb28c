"""SQL of decisions: rows, their audit trail and outcomes, and what policies read back from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from service.models import Cluster, Decision, DecisionEvent, Outcome


@dataclass(frozen=True)
class DecisionFilter:
    kind: str | None = None
    status: str | None = None
    target: str | None = None
    cluster: str | None = None
    policy: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def add_decision(session: Session, row: Decision, actor: str, note: str | None = None) -> Decision:
    session.add(row)
    session.flush()
    add_event(session, row.id, actor, None, row.status, note)
    return row


def add_event(
    session: Session, decision_id: int, actor: str, before: str | None, after: str, note: str | None
) -> None:
    session.add(
        DecisionEvent(decision_id=decision_id, actor=actor, from_status=before, to_status=after, note=note)
    )


def get_for_update(session: Session, decision_id: int) -> Decision | None:
    """The row, locked on Postgres so two operators cannot approve and reject it at once."""
    return session.scalars(select(Decision).where(Decision.id == decision_id).with_for_update()).first()


def get(session: Session, decision_id: int) -> Decision | None:
    return session.get(Decision, decision_id)


def _filtered(query: Select[Any], f: DecisionFilter) -> Select[Any]:
    if f.kind:
        query = query.where(Decision.kind == f.kind)
    if f.status:
        query = query.where(Decision.status == f.status)
    if f.target:
        query = query.where(Decision.target_name == f.target)
    if f.policy:
        query = query.where(Decision.policy == f.policy)
    if f.actor:
        query = query.where(Decision.actor == f.actor)
    if f.since:
        query = query.where(Decision.created_at >= f.since)
    if f.until:
        query = query.where(Decision.created_at < f.until)
    if f.cluster:
        query = query.join(Cluster, Cluster.id == Decision.cluster_id).where(Cluster.name == f.cluster)
    return query


def list_decisions(
    session: Session, f: DecisionFilter, limit: int, offset: int
) -> tuple[list[Decision], int]:
    total = session.scalar(_filtered(select(func.count()).select_from(Decision), f)) or 0
    rows = session.scalars(
        _filtered(select(Decision), f)
        .order_by(Decision.created_at.desc(), Decision.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), int(total)


def history_of(session: Session, ids: Sequence[int]) -> dict[int, list[DecisionEvent]]:
    out: dict[int, list[DecisionEvent]] = {i: [] for i in ids}
    if ids:
        rows = session.scalars(
            select(DecisionEvent).where(DecisionEvent.decision_id.in_(ids)).order_by(DecisionEvent.id)
        ).all()
        for row in rows:
            out[row.decision_id].append(row)
    return out


def outcomes_of(session: Session, ids: Sequence[int]) -> dict[int, Outcome]:
    if not ids:
        return {}
    return {
        o.decision_id: o for o in session.scalars(select(Outcome).where(Outcome.decision_id.in_(ids))).all()
    }


def cluster_names(session: Session, ids: Sequence[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(Cluster.id, Cluster.name).where(Cluster.id.in_(wanted))).all())


def add_outcome(session: Session, outcome: Outcome) -> Outcome:
    session.add(outcome)
    session.flush()
    return outcome


def violation_counts(
    session: Session, kind: str, cluster_id: int | None, target: str, since: datetime
) -> tuple[int, int]:
    """(windows, violations) reported in outcomes of this target's decisions since `since`."""
    rows = session.execute(
        select(Outcome.details)
        .join(Decision, Decision.id == Outcome.decision_id)
        .where(Decision.kind == kind, Decision.target_name == target, Decision.cluster_id == cluster_id)
        .where(Outcome.measured_at >= since)
    ).scalars()
    windows = violations = 0
    for details in rows:
        windows += int(details.get("windows") or 0)
        violations += int(details.get("violations") or 0)
    return windows, violations


def recent_wanted(
    session: Session, kind: str, cluster_id: int | None, target: str, since: datetime
) -> list[tuple[datetime, int]]:
    """(created_at, replicas the policy wanted) of this target's recent decisions, for stabilization."""
    rows = session.execute(
        select(Decision.created_at, Decision.explanation, Decision.params)
        .where(Decision.kind == kind, Decision.target_name == target, Decision.cluster_id == cluster_id)
        .where(Decision.created_at >= since)
        .order_by(Decision.created_at)
    ).all()
    out = []
    for created, explanation, params in rows:
        wanted = (explanation.get("details") or {}).get("wanted_replicas", params.get("replicas"))
        if wanted is not None:
            out.append((created, int(wanted)))
    return out


def latest_live(
    session: Session, kind: str, cluster_id: int | None, target: str, now: datetime
) -> Decision | None:
    """The newest decision of `kind` for the target that is still in force or awaiting action."""
    return session.scalars(
        select(Decision)
        .where(Decision.kind == kind, Decision.cluster_id == cluster_id, Decision.target_name == target)
        .where(Decision.status.in_(("proposed", "approved", "applied")))
        .where(or_(Decision.expires_at.is_(None), Decision.expires_at > now))
        .order_by(Decision.id.desc())
        .limit(1)
    ).first()


def expire_due(session: Session, now: datetime) -> list[Decision]:
    """Proposed or approved (not yet carried out) decisions whose window has passed: they are about a
    moment that is gone."""
    return list(
        session.scalars(
            select(Decision)
            .where(Decision.status.in_(("proposed", "approved")))
            .where(Decision.expires_at.is_not(None), Decision.expires_at < now)
            # locked like an operator's approve, so an expiry and a verdict cannot both apply; rows an
            # operator holds right now are left for the next run
            .with_for_update(skip_locked=True)
        ).all()
    )
