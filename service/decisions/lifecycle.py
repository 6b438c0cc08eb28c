"""A decision's statuses and the one function that moves it between them (with its audit entry).

proposed → approved | rejected | applied | expired; approved → applied | expired | failed. What moving
means for the target (a mitigation applied takes its node out of service) happens here too."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from service.decisions import repository as repo
from service.errors import Conflict
from service.models import Decision
from service.nodes import lifecycle as nodes

AUTO_ACTOR = "foresight:auto"
LOOP_ACTOR = "foresight:loop"
POLICY_ACTOR = "foresight"
TRANSITIONS: dict[str, set[str]] = {
    "proposed": {"approved", "rejected", "applied", "expired"},
    "approved": {"applied", "expired", "failed"},
    "rejected": set(),
    "applied": set(),
    "expired": set(),
    "failed": set(),
}


def now() -> datetime:
    return datetime.now(UTC)


def move_status(session: Session, row: Decision, status: str, actor: str, note: str | None) -> None:
    if status not in TRANSITIONS[row.status]:
        raise Conflict(f"decision {row.id} is {row.status}; it cannot become {status}")
    before = row.status
    row.status = status
    row.actor = actor
    row.updated_at = now()
    if status == "applied":
        row.applied_at = row.updated_at
        if row.kind == "mitigation" and row.params.get("takes_out_of_service"):
            nodes.mitigation_applied(session, row.cluster_id, row.target_name)
    repo.add_event(session, row.id, actor, before, status, note)
    session.flush()


def add_note(session: Session, row: Decision, actor: str, note: str) -> None:
    """An audit entry that changes no status (an actuation attempt, an outcome); `updated_at` moves so
    readers caching a decision's answer see it changed."""
    row.updated_at = now()
    repo.add_event(session, row.id, actor, row.status, row.status, note[:1000])
