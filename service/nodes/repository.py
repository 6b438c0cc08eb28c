"""SQL of node events and the stored mitigation model."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import Decision, ModelRecord, Node, NodeEvent

MITIGATION_MODEL = "mitigation_causal"


def find_event(session: Session, node_id: int, ts: datetime, kind: str) -> NodeEvent | None:
    return session.scalars(
        select(NodeEvent).where(NodeEvent.node_id == node_id, NodeEvent.ts == ts, NodeEvent.kind == kind)
    ).first()


def add_event(session: Session, event: NodeEvent) -> NodeEvent:
    session.add(event)
    session.flush()
    return event


def events_of(session: Session, node_id: int, limit: int, offset: int) -> list[NodeEvent]:
    query = (
        select(NodeEvent)
        .where(NodeEvent.node_id == node_id)
        .order_by(NodeEvent.ts.desc(), NodeEvent.id.desc())
    )
    return list(session.scalars(query.limit(limit).offset(offset)).all())


def event_by_id(session: Session, event_id: int) -> NodeEvent | None:
    return session.get(NodeEvent, event_id)


def events_with_outcome(session: Session) -> list[NodeEvent]:
    """The causal training data: events whose action and downtime are known."""
    query = select(NodeEvent).where(
        NodeEvent.action_taken.is_not(None), NodeEvent.downtime_minutes.is_not(None)
    )
    return list(session.scalars(query.order_by(NodeEvent.id)).all())


def out_of_service(session: Session, cluster_id: int, except_node: int) -> int:
    query = select(Node.id).where(
        Node.cluster_id == cluster_id, Node.status.in_(("out_of_service", "repair")), Node.id != except_node
    )
    return len(session.scalars(query).all())


def latest_mitigation_model(session: Session) -> ModelRecord | None:
    query = select(ModelRecord).where(ModelRecord.kind == "policy", ModelRecord.name == MITIGATION_MODEL)
    return session.scalars(query.order_by(ModelRecord.version.desc()).limit(1)).first()


def undecided_events(session: Session, node_id: int, limit: int = 20) -> list[int]:
    """Unresolved events of the node without a mitigation decision naming them (oldest first)."""
    node = session.get(Node, node_id)
    if node is None:
        return []
    decided = {
        int(params["event_id"])
        for params in session.scalars(
            select(Decision.params).where(
                Decision.kind == "mitigation",
                Decision.cluster_id == node.cluster_id,
                Decision.target_name == node.name,
            )
        )
        if isinstance(params, dict) and isinstance(params.get("event_id"), int)
    }
    rows = session.scalars(
        select(NodeEvent.id)
        .where(NodeEvent.node_id == node_id, NodeEvent.resolved_at.is_(None))
        .order_by(NodeEvent.ts)
    )
    return [i for i in rows if i not in decided][:limit]
