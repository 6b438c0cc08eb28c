"""SQL of node events (one at a time and in bulk), the stored mitigation model and the declared rule."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, defer

from service.models import Cluster, Decision, ModelRecord, Node, NodeEvent

MITIGATION_MODEL = "mitigation_causal"
MITIGATION_RULE = "mitigation_rule"
RULE_KIND = "policy_rule"
CHUNK = 500
"""Names or ids per IN (...) list: well inside SQLite's and Postgres's parameter limits."""


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def clusters_by_name(session: Session, names: set[str]) -> dict[str, int]:
    """Cluster ids by name, creating the missing ones (few per import)."""
    found: dict[str, int] = {}
    for part in _chunks(sorted(names)):
        found.update(
            {n: i for n, i in session.execute(select(Cluster.name, Cluster.id).where(Cluster.name.in_(part)))}
        )
    missing = sorted(names - set(found))
    if missing:
        session.execute(insert(Cluster), [{"name": n} for n in missing])
        for part in _chunks(missing):
            query = select(Cluster.name, Cluster.id).where(Cluster.name.in_(part))
            found.update({n: i for n, i in session.execute(query)})
    return found


def nodes_by_key(session: Session, keys: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Node ids by (cluster id, name), creating the missing ones with one bulk insert."""
    found: dict[tuple[int, str], int] = {}
    names = sorted({name for _, name in keys})
    clusters = sorted({c for c, _ in keys})
    for part in _chunks(names):
        query = select(Node.cluster_id, Node.name, Node.id).where(
            Node.name.in_(part), Node.cluster_id.in_(clusters)
        )
        found.update({(c, n): i for c, n, i in session.execute(query)})
    missing = sorted(keys - set(found))
    if missing:
        session.execute(insert(Node), [{"cluster_id": c, "name": n} for c, n in missing])
        for part in _chunks([n for _, n in missing]):
            query = select(Node.cluster_id, Node.name, Node.id).where(
                Node.name.in_(part), Node.cluster_id.in_(clusters)
            )
            found.update({(c, n): i for c, n, i in session.execute(query)})
    return found


def existing_event_keys(
    session: Session, node_ids: set[int], first: datetime, last: datetime
) -> set[tuple[int, datetime, str]]:
    """(node id, ts, kind) of stored events of these nodes in [first, last]: what a resend repeats."""
    out: set[tuple[int, datetime, str]] = set()
    for part in _chunks(sorted(node_ids)):
        query = select(NodeEvent.node_id, NodeEvent.ts, NodeEvent.kind).where(
            NodeEvent.node_id.in_(part), NodeEvent.ts >= first, NodeEvent.ts <= last
        )
        out.update((node, ts, kind) for node, ts, kind in session.execute(query))
    return out


EVENT_COLUMNS = (
    "node_id", "ts", "kind", "severity", "signals", "context", "action_taken", "downtime_minutes",
    "resolved_at",
)  # fmt: skip


def add_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """New event rows at once, inside the request's transaction (all or nothing): one `COPY` on
    Postgres, one Core bulk insert (executemany, no ORM bookkeeping) on SQLite."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(NodeEvent), rows)
        return
    raw = connection.connection.driver_connection
    if raw is None:
        raise RuntimeError("the session's connection has no driver connection to COPY through")
    statement = f"COPY node_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                tuple(
                    orjson.dumps(row[c]).decode() if c in ("signals", "context") else row[c]
                    for c in EVENT_COLUMNS
                )
            )


def latest_rule(session: Session) -> ModelRecord | None:
    query = select(ModelRecord).where(ModelRecord.kind == RULE_KIND, ModelRecord.name == MITIGATION_RULE)
    return session.scalars(query.order_by(ModelRecord.version.desc()).limit(1)).first()


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


class ModelRef(NamedTuple):
    """What a recommendation needs to know about the serving model without reading its row past `params`
    (SQLite stores a row's columns in order: reading `created_at`, after the multi-megabyte artifact,
    walks the artifact's overflow pages on every request)."""

    id: int
    version: int
    params: dict[str, Any]


def latest_mitigation_ref(session: Session) -> ModelRef | None:
    """The newest mitigation model's id, version and params (found through the (name, version) index)."""
    query = (
        select(ModelRecord.id, ModelRecord.version, ModelRecord.params)
        .where(ModelRecord.kind == "policy", ModelRecord.name == MITIGATION_MODEL)
        .order_by(ModelRecord.version.desc())
        .limit(1)
    )
    row = session.execute(query).first()
    return None if row is None else ModelRef(int(row[0]), int(row[1]), dict(row[2] or {}))


def created_at_of(session: Session, model_id: int) -> datetime | None:
    return session.scalar(select(ModelRecord.created_at).where(ModelRecord.id == model_id))


def latest_mitigation_model(session: Session) -> ModelRecord | None:
    """The newest mitigation model's registry row without its artifact (megabytes: loaded once, by id,
    when the serving cache does not hold it yet)."""
    query = (
        select(ModelRecord)
        .options(defer(ModelRecord.artifact))
        .where(ModelRecord.kind == "policy", ModelRecord.name == MITIGATION_MODEL)
    )
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
