"""What a mitigation decision's life means for its node: applied, the node is out of service (the
out-of-service cap counts it); its outcome completes the node event, which becomes causal training data,
and brings the node back. The decisions domain calls these; they know nothing of decisions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from service.inventory import service as inventory
from service.nodes import repository as repo


def mitigation_applied(session: Session, cluster_id: int | None, node: str) -> None:
    inventory.set_node_status(session, cluster_id, node, "out_of_service")


def mitigation_outcome(
    session: Session,
    cluster_id: int | None,
    node: str,
    event_id: int,
    action: str,
    downtime_minutes: float,
    resolved_at: datetime,
) -> None:
    event = repo.event_by_id(session, event_id)
    if event is not None:
        event.action_taken = action
        event.downtime_minutes = downtime_minutes
        event.resolved_at = resolved_at
    inventory.set_node_status(session, cluster_id, node, "healthy")
