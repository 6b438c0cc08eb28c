"""Unhealthy-node events in, mitigation decisions out: record events (idempotent), recommend an action
with the causal policy (falling back to the legacy rule, and saying why, when there is no model or the
estimate is unsure), and train the causal model from events whose action and downtime are known."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from policies.mitigation_model import MitigationModel
from policies.mitigation_types import MitigationInput, NodeEventRecord
from policies.types import PolicyError, jsonable
from service.config import Settings
from service.decisions import service as decisions
from service.decisions.schemas import DecisionOut
from service.errors import InvalidInput, NotFound
from service.forecasts import repository as registry
from service.forecasts.schemas import ModelOut
from service.forecasts.service import model_out
from service.inventory import service as inventory
from service.models import ModelRecord, Node, NodeEvent
from service.nodes import repository as repo
from service.nodes.schemas import (
    BulkNodeEvents,
    BulkResult,
    MitigationRequest,
    MitigationTrainRequest,
    NodeEventBody,
    NodeEventIn,
    NodeEventOut,
)
from service.timeparse import parse_time

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MODELS: dict[int, MitigationModel] = {}
_MODELS_LOCK = threading.Lock()


def _ts(value: str | float | None, where: str) -> datetime:
    if value is None:
        return datetime.now(UTC)
    moment = parse_time(str(value), where)
    if moment < EPOCH:
        raise InvalidInput(
            f"{where} is before 1970-01-01", details=[{"field": where, "problem": "before 1970-01-01"}]
        )
    if moment > datetime.now(UTC) + timedelta(minutes=10):
        raise InvalidInput(
            f"{where} is in the future", details=[{"field": where, "problem": "future timestamp"}]
        )
    return moment


def _check(body: NodeEventBody, where: str) -> None:
    """Validate with the policy's own rules so a stored event can always be decided on and trained on."""
    try:
        NodeEventRecord(
            dict(body.signals),
            dict(body.context),
            body.kind,
            body.severity,
            body.action_taken,
            body.downtime_minutes,
        )
    except PolicyError as error:
        raise InvalidInput(f"{where}: {error}", details=[{"loc": [where], "msg": str(error)}]) from error


def event_out(row: NodeEvent, node: str, cluster: str) -> NodeEventOut:
    return NodeEventOut(
        id=row.id,
        node=node,
        cluster=cluster,
        ts=row.ts,
        kind=row.kind,
        severity=row.severity,
        signals=row.signals,
        context=row.context,
        action_taken=row.action_taken,
        downtime_minutes=row.downtime_minutes,
        resolved_at=row.resolved_at,
    )


def _store(session: Session, node: Node, body: NodeEventBody, where: str) -> tuple[NodeEvent, bool]:
    _check(body, where)
    ts = _ts(body.ts, f"{where}.ts")
    existing = repo.find_event(session, node.id, ts, body.kind)
    if existing is not None:  # a resent event: the same row, nothing new
        return existing, False
    row = NodeEvent(
        node_id=node.id,
        ts=ts,
        kind=body.kind,
        severity=body.severity,
        signals=dict(body.signals),
        context=dict(body.context),
        action_taken=body.action_taken,
        downtime_minutes=body.downtime_minutes,
    )
    return repo.add_event(session, row), True


def record_event(session: Session, name: str, body: NodeEventIn) -> tuple[NodeEventOut, bool]:
    node, _ = inventory.find_or_create(session, Node, name, body.cluster)
    row, created = _store(session, node, body, "event")
    return event_out(row, name, body.cluster), created


def record_events(session: Session, body: BulkNodeEvents) -> BulkResult:
    """Import history: all events or none (a bad one names its index)."""
    created = duplicates = 0
    for i, item in enumerate(body.events):
        node, _ = inventory.find_or_create(session, Node, item.node, item.cluster)
        _, new = _store(session, node, item, f"events[{i}]")
        created += int(new)
        duplicates += int(not new)
    return BulkResult(created=created, duplicates=duplicates)


def list_events(
    session: Session, name: str, cluster: str | None, limit: int, offset: int
) -> list[NodeEventOut]:
    node, cluster_name = inventory.find(session, Node, name, cluster)
    return [event_out(row, name, cluster_name) for row in repo.events_of(session, node.id, limit, offset)]


def _loaded_model(session: Session) -> tuple[MitigationModel | None, ModelRecord | None]:
    record = repo.latest_mitigation_model(session)
    if record is None:
        return None, None
    with _MODELS_LOCK:
        model = _MODELS.get(record.id)
    if model is None:
        artifact = registry.artifact_of(session, record.id)
        if artifact is None:
            return None, record
        model = MitigationModel.from_bytes(artifact)
        with _MODELS_LOCK:
            _MODELS.clear()  # one mitigation model serves at a time
            _MODELS[record.id] = model
    return model, record


def recommend(
    session: Session, body: MitigationRequest, settings: Settings, requested_by: str
) -> DecisionOut:
    policy = decisions.policy_named(body.policy, "mitigation")
    node, cluster = inventory.find(session, Node, body.node, body.cluster)
    if body.event_id is not None:
        event = repo.event_by_id(session, body.event_id)
        if event is None or event.node_id != node.id:
            raise NotFound(
                f"event {body.event_id} of node {body.node!r} does not exist; list its events with "
                f"GET /v1/nodes/{body.node}/events"
            )
    else:
        assert body.event is not None
        event, _ = _store(session, node, body.event, "event")
    model, record = _loaded_model(session)
    record_of_event = NodeEventRecord(dict(event.signals), dict(event.context), event.kind, event.severity)
    inputs = MitigationInput(
        node=node.name,
        event=record_of_event.event,
        nodes_out_of_service=repo.out_of_service(session, node.cluster_id, node.id),
        max_out_of_service=settings.max_nodes_out_of_service,
        model=model,
    )
    try:
        decision = policy.decide(inputs)
    except PolicyError as error:
        raise InvalidInput(f"cannot decide for node {node.name!r}: {error}") from error
    decision.params["event_id"] = event.id
    decision.details["model"] = {"id": record.id, "version": record.version} if record is not None else None
    return decisions.record(
        session,
        decision,
        cluster_id=node.cluster_id,
        target_kind="node",
        mode="approve",
        valid_for=timedelta(hours=1),
        requested_by=requested_by,
        cluster_name=cluster,
    )


def undecided_events(session: Session, node_id: int) -> list[int]:
    """Ids of the node's unresolved events that no mitigation decision has answered yet."""
    return repo.undecided_events(session, node_id)


def train(session: Session, body: MitigationTrainRequest) -> ModelOut:
    """Fit the causal model on every event with a known action and downtime; store it in `models`."""
    rows = repo.events_with_outcome(session)
    records = [
        NodeEventRecord(
            dict(r.signals), dict(r.context), r.kind, r.severity, r.action_taken, r.downtime_minutes
        )
        for r in rows
    ]
    model = MitigationModel(
        n_estimators=body.n_estimators, min_events=body.min_events, min_per_action=body.min_per_action
    )
    try:
        model.fit(records, seed=body.seed)
    except PolicyError as error:
        raise InvalidInput(str(error)) from error
    description: dict[str, Any] = model.describe()
    first = min((r.ts for r in rows), default=None)
    last = max((r.ts for r in rows), default=None)
    version = registry.next_version(session, repo.MITIGATION_MODEL)
    row = registry.add_model(
        session,
        ModelRecord(
            kind="policy",
            name=repo.MITIGATION_MODEL,
            version=version,
            params={
                "n_estimators": body.n_estimators,
                "min_events": body.min_events,
                "seed": body.seed,
                "actions": list(model.actions),
            },
            metrics=jsonable(description),
            training_start=first,
            training_end=last,
            artifact=model.to_bytes(),
        ),
    )
    return model_out(row)
