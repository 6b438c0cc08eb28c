"""Unhealthy-node events in, mitigation decisions out: record events (idempotent; history in bulk),
recommend an action with the causal policy (falling back to the fleet's learned practice or the user's
declared rule, and saying why), train the model from events whose action and downtime are known, and
keep the declared rule and hard-fault overrides (versioned rows of the `models` registry)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from policies.mitigation_model import MitigationModel, ModelNotFitted
from policies.mitigation_practice import DeclaredRule
from policies.mitigation_rules import HardFaultOverrides
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
    MitigationRuleIn,
    MitigationRuleOut,
    MitigationTrainRequest,
    NodeEventBody,
    NodeEventIn,
    NodeEventOut,
)
from service.timeparse import parse_time

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MODELS: dict[tuple[int, int, str], MitigationModel] = {}
"""The serving model, by registry id, version and artifact token (ids and versions repeat across
databases one process may serve one after another, e.g. a bench or the tests; the token does not)."""
ARTIFACT_TOKEN = "artifact_token"
"""A random id written into the params of each trained model (read without touching the artifact)."""
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
        resolved_at=_resolved(body, ts),
    )
    return repo.add_event(session, row), True


def _resolved(body: NodeEventBody, ts: datetime) -> datetime | None:
    """History with its outcome (action and downtime known) is resolved: nothing is left to decide, so
    the control loop does not ask for a mitigation of it."""
    return ts if body.action_taken is not None and body.downtime_minutes is not None else None


def record_event(session: Session, name: str, body: NodeEventIn) -> tuple[NodeEventOut, bool]:
    node, _ = inventory.find_or_create(session, Node, name, body.cluster)
    row, created = _store(session, node, body, "event")
    return event_out(row, name, body.cluster), created


def record_events(session: Session, body: BulkNodeEvents) -> BulkResult:
    """Import history: all events or none (a bad one names its index). Validates everything first, then
    looks nodes and already-stored events up in bulk and inserts the new events at once."""
    stamps = []
    for i, item in enumerate(body.events):
        _check(item, f"events[{i}]")
        stamps.append(_ts(item.ts, f"events[{i}].ts"))
    clusters = repo.clusters_by_name(session, {item.cluster for item in body.events})
    nodes = repo.nodes_by_key(session, {(clusters[item.cluster], item.node) for item in body.events})
    node_ids = [nodes[(clusters[item.cluster], item.node)] for item in body.events]
    seen = repo.existing_event_keys(session, set(node_ids), min(stamps), max(stamps))
    rows: list[dict[str, Any]] = []
    for item, ts, node_id in zip(body.events, stamps, node_ids, strict=True):
        key = (node_id, ts, item.kind)
        if key in seen:  # stored before, or repeated within this import
            continue
        seen.add(key)
        rows.append({
            "node_id": node_id, "ts": ts, "kind": item.kind, "severity": item.severity,
            "signals": dict(item.signals), "context": dict(item.context),
            "action_taken": item.action_taken, "downtime_minutes": item.downtime_minutes,
            "resolved_at": _resolved(item, ts),
        })  # fmt: skip
    repo.add_events(session, rows)
    return BulkResult(created=len(rows), duplicates=len(body.events) - len(rows))


def list_events(
    session: Session, name: str, cluster: str | None, limit: int, offset: int
) -> list[NodeEventOut]:
    node, cluster_name = inventory.find(session, Node, name, cluster)
    return [event_out(row, name, cluster_name) for row in repo.events_of(session, node.id, limit, offset)]


def _loaded_model(session: Session) -> tuple[MitigationModel | None, repo.ModelRef | None]:
    """The serving model, unpickled once per process and version. Every request reads the registry's
    newest (id, version, artifact token) — one indexed row — so a model trained by any worker or replica
    serves from the next request on; the artifact is read only when that key is not cached here."""
    ref = repo.latest_mitigation_ref(session)
    if ref is None:
        return None, None
    token = ref.params.get(ARTIFACT_TOKEN)
    # models trained before the token existed: the creation time tells databases apart (slower read)
    stamp = str(token) if token else str(repo.created_at_of(session, ref.id))
    key = (ref.id, ref.version, stamp)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
    if model is None:
        artifact = registry.artifact_of(session, ref.id)
        if artifact is None:
            return None, ref
        try:
            model = MitigationModel.from_bytes(artifact)
        except ModelNotFitted:  # an artifact of an older format: answer as without a model (retrain)
            return None, ref
        with _MODELS_LOCK:
            _MODELS.clear()  # one mitigation model serves at a time
            _MODELS[key] = model
    return model, ref


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
    rule, overrides, rule_row = _rule_setting(session)
    record_of_event = NodeEventRecord(dict(event.signals), dict(event.context), event.kind, event.severity)
    inputs = MitigationInput(
        node=node.name,
        event=record_of_event.event,
        nodes_out_of_service=repo.out_of_service(session, node.cluster_id, node.id),
        max_out_of_service=settings.max_nodes_out_of_service,
        model=model,
        rule=rule,
        overrides=overrides,
    )
    try:
        decision = policy.decide(inputs)
    except PolicyError as error:
        raise InvalidInput(f"cannot decide for node {node.name!r}: {error}") from error
    decision.params["event_id"] = event.id
    decision.details["model"] = {"id": record.id, "version": record.version} if record is not None else None
    rule_version = rule_row.version if rule_row is not None else None
    if record is not None and record.params.get("rule_version") != rule_version:
        decision.details["rule_changed_since_training"] = (
            f"the fallback setting is version {rule_version}, the model was trained with version "
            f"{record.params.get('rule_version')}: retrain for its off-policy estimate to reflect it"
        )
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


def savings(session: Session) -> dict[str, Any] | None:
    """The latest mitigation model's off-policy estimate of its saving (None: no model yet)."""
    record = repo.latest_mitigation_model(session)
    if record is None:
        return None
    found = (record.metrics or {}).get("savings")
    return (
        {**found, "version": record.version, "learner": record.metrics.get("selection", {}).get("learner")}
        if found
        else None
    )


def undecided_events(session: Session, node_id: int) -> list[int]:
    """Ids of the node's unresolved events that no mitigation decision has answered yet."""
    return repo.undecided_events(session, node_id)


def train(session: Session, body: MitigationTrainRequest) -> ModelOut:
    """Fit the model on every event with a known action and downtime (overridden events excluded, the
    declared rule as the fallback when there is one); store it in `models`. Its metrics hold the learner
    selection and the off-policy estimate of the saving."""
    rows = repo.events_with_outcome(session)
    records = [
        NodeEventRecord(
            dict(r.signals), dict(r.context), r.kind, r.severity, r.action_taken, r.downtime_minutes
        )
        for r in rows
    ]
    rule, overrides, rule_row = _rule_setting(session)
    model = MitigationModel(
        n_estimators=body.n_estimators,
        nuisance_estimators=body.nuisance_estimators,
        folds=body.folds,
        learners=body.learners,
        min_events=body.min_events,
        min_per_action=body.min_per_action,
    )
    try:
        model.fit(
            records,
            seed=body.seed,
            exclude_kinds=list(overrides.kinds),
            exclude_severities=list(overrides.severities),
            rule=rule,
        )
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
                "learners": list(body.learners),
                "actions": list(model.actions),
                "rule_version": rule_row.version if rule_row is not None else None,
                ARTIFACT_TOKEN: uuid.uuid4().hex,
            },
            metrics=jsonable(description),
            training_start=first,
            training_end=last,
            artifact=model.to_bytes(),
        ),
    )
    return model_out(row)


def _rule_setting(session: Session) -> tuple[DeclaredRule | None, HardFaultOverrides, ModelRecord | None]:
    """The stored fallback setting: the declared rule (None: learned practice), the overrides, the row."""
    row = repo.latest_rule(session)
    if row is None:
        return None, HardFaultOverrides(), None
    doc = row.params or {}
    rule = DeclaredRule.from_mapping(doc["rule"]) if doc.get("rule") else None
    return rule, HardFaultOverrides.from_mapping(doc.get("overrides")), row


def _rule_out(session: Session, row: ModelRecord | None) -> MitigationRuleOut:
    rule, overrides, _ = _rule_setting(session)
    warnings: list[str] = []
    model, _ = _loaded_model(session)
    if model is not None and model.encoder is not None:
        actions = (rule.actions if rule else set()) | {
            *overrides.kinds.values(),
            *overrides.severities.values(),
        }
        unknown = sorted(actions - set(model.actions))
        if unknown:
            warnings.append(
                f"actions {unknown} are not among the latest model's actions {list(model.actions)}: "
                f"events they decide fall back to them unscored, and training refuses a rule naming them"
            )
        known = {k.removeprefix("signal.") for k in model.encoder.numeric} | set(model.encoder.categorical)
        signals = sorted(s for s in (rule.signals if rule else set()) if s not in known)
        if signals:
            warnings.append(f"signals {signals} never appeared in the history the latest model learned from")
    return MitigationRuleOut(
        source="declared_rule" if rule is not None else "learned_practice",
        rule=rule.to_mapping() if rule is not None else None,
        overrides=overrides.to_mapping(),
        version=row.version if row is not None else None,
        updated_at=row.created_at if row is not None else None,
        warnings=warnings,
    )


def get_rule(session: Session) -> MitigationRuleOut:
    """The current fallback setting (learned practice and the built-in overrides until one is set)."""
    return _rule_out(session, repo.latest_rule(session))


def set_rule(session: Session, body: MitigationRuleIn | None) -> MitigationRuleOut:
    """Store a new version of the fallback setting (None: back to learned practice, default overrides)."""
    doc: dict[str, Any] = {"rule": None, "overrides": None}
    if body is not None:
        if body.default is not None:
            doc["rule"] = {"clauses": [c.model_dump() for c in body.clauses], "default": body.default}
        if body.overrides is not None:
            doc["overrides"] = body.overrides.model_dump()
    try:
        if doc["rule"]:
            DeclaredRule.from_mapping(doc["rule"])
        HardFaultOverrides.from_mapping(doc["overrides"])
    except PolicyError as error:
        raise InvalidInput(str(error), details=[{"loc": ["body"], "msg": str(error)}]) from error
    row = registry.add_model(
        session,
        ModelRecord(
            kind=repo.RULE_KIND,
            name=repo.MITIGATION_RULE,
            version=registry.next_version(session, repo.MITIGATION_RULE),
            params=doc,
            metrics={},
        ),
    )
    return _rule_out(session, row)
