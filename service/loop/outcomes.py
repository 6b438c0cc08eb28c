"""Outcomes the loop measures itself: once a scaling decision has been carried out by an actuator, the
replicas the cluster actually reached (from kube-state-metrics telemetry, or the actuator reading the
scale back) and how long that took become the decision's outcome — without anyone posting it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service import readings as read
from service.actuators.base import ScaleTarget
from service.actuators.registry import actuator_for
from service.config import Settings
from service.db import Database
from service.decisions import lifecycle
from service.decisions import repository as decisions_repo
from service.models import Actuation, Cluster, Decision, Outcome, Workload
from service.models.base import utcnow

GIVE_UP_AFTER = timedelta(minutes=15)
"""A change not reached this long after it was applied is reported as not reached."""


def awaiting(session: Session, limit: int) -> list[tuple[Decision, Actuation]]:
    """Applied scaling decisions carried out by an actuator whose outcome is not measured yet."""
    rows = session.execute(
        select(Decision, Actuation)
        .join(Actuation, Actuation.decision_id == Decision.id)
        .outerjoin(Outcome, Outcome.decision_id == Decision.id)
        .where(Decision.kind == "scaling", Decision.status == "applied", Outcome.id.is_(None))
        .where(Actuation.status == "applied", Actuation.dry_run.is_(False))
        .order_by(Decision.id)
        .limit(limit)
    ).all()
    return [(d, a) for d, a in rows]


def observe(database: Database, limit: int = 100) -> int:
    """Measure what the cluster reached for up to `limit` decisions; returns how many got an outcome."""
    settings = database.settings
    measured = 0
    with database.session() as session:
        for decision, attempt in awaiting(session, limit):
            wanted = int(decision.params.get("replicas", -1))
            reached, source = _reached(session, settings, decision, attempt.actuator)
            now = utcnow()
            if reached != wanted and now - attempt.finished_at < GIVE_UP_AFTER:
                continue
            details = {
                "replicas_wanted": wanted,
                "replicas_reached": reached,
                "reached": reached == wanted,
                "source": source,
                "seconds_to_reach": round((now - attempt.finished_at).total_seconds(), 1),
                "measured_by": "foresight:loop",
            }
            decisions_repo.add_outcome(
                session, Outcome(decision_id=decision.id, measured_at=now, details=details)
            )
            note = f"outcome: {reached} of {wanted} replicas ({source})"
            lifecycle.add_note(session, decision, "foresight:loop", note)
            measured += 1
    return measured


def _reached(
    session: Session, settings: Settings, decision: Decision, actuator: str
) -> tuple[int | None, str]:
    workload = session.scalars(
        select(Workload).where(
            Workload.cluster_id == decision.cluster_id, Workload.name == decision.target_name
        )
    ).first()
    cluster = session.get(Cluster, decision.cluster_id) if decision.cluster_id is not None else None
    if workload is not None and cluster is not None:
        reported = read.current_replicas(session, cluster.name, workload.name, max_age_seconds=300)
        applied = decision.applied_at.timestamp() if decision.applied_at is not None else 0.0
        if reported is not None and reported[1] >= applied:
            return reported[0], "telemetry"
    target = workload.scale_target if workload is not None and workload.scale_target else decision.target_name
    try:
        parsed = ScaleTarget.parse(target)
    except ValueError:
        return None, "unknown"
    try:
        count = actuator_for(actuator, settings).current_replicas(parsed)
    except Exception:
        return None, "unknown"
    return count, actuator if count is not None else "unknown"
