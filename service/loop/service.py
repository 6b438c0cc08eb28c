"""Control-loop use cases for the API: its status, its targets, and the kill switches (fleet-wide and
per target). Freezing stops actuation only: decisions are still made and recorded."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from service.actuators.registry import ACTUATORS
from service.config import Settings
from service.errors import InvalidInput
from service.inventory import service as inventory
from service.loop import repository as repo
from service.loop.schemas import LoopStatus, TargetConfig, TargetKind, TargetOut
from service.models import Cluster, LoopTarget, Node, PowerDomain, Workload
from service.models.base import utcnow

MODELS: dict[str, Any] = {
    "workload": Workload,
    "power_domain": PowerDomain,
    "node": Node,
}


def status(session: Session, settings: Settings) -> LoopStatus:
    fleet = repo.global_switch(session)
    rows = [r for r in repo.list_targets(session, 100_000, 0) if r.target_kind != "global"]
    now = utcnow()
    overdue = sum(
        1
        for r in rows
        if r.next_due_at < now - timedelta(seconds=2 * (r.cadence_seconds or settings.loop_cadence_seconds))
    )
    actuation: Literal["enabled", "frozen", "disabled"] = "enabled"
    if not settings.actuation_enabled:
        actuation = "disabled"
    elif fleet is not None and fleet.frozen:
        actuation = "frozen"
    return LoopStatus(
        enabled=settings.loop_enabled and settings.jobs_enabled,
        actuation=actuation,
        frozen_reason=fleet.frozen_reason if fleet and fleet.frozen else None,
        frozen_by=fleet.frozen_by if fleet and fleet.frozen else None,
        default_cadence_seconds=settings.loop_cadence_seconds,
        default_actuator=settings.actuator,
        targets=len(rows),
        by_status=dict(Counter(r.last_status or "new" for r in rows)),
        overdue=overdue,
    )


def list_targets(session: Session, settings: Settings, limit: int, offset: int) -> list[TargetOut]:
    rows = [r for r in repo.list_targets(session, limit, offset) if r.target_kind != "global"]
    return [_out(session, settings, r) for r in rows]


def _out(session: Session, settings: Settings, row: LoopTarget) -> TargetOut:
    entity = session.get(MODELS[row.target_kind], row.target_id)
    cluster = session.get(Cluster, row.cluster_id) if row.cluster_id is not None else None
    return TargetOut(
        kind=row.target_kind,
        name=entity.name if entity is not None else f"#{row.target_id} (gone)",
        cluster=cluster.name if cluster is not None else None,
        cadence_seconds=row.cadence_seconds or settings.loop_cadence_seconds,
        actuator=row.actuator or settings.actuator,
        frozen=row.frozen,
        frozen_reason=row.frozen_reason,
        frozen_by=row.frozen_by,
        next_due_at=row.next_due_at,
        last_run_at=row.last_run_at,
        last_status=row.last_status,
        last_detail=row.last_detail or {},
    )


def configure_target(
    session: Session, settings: Settings, kind: TargetKind, name: str, body: TargetConfig, actor: str
) -> TargetOut:
    entity, _ = inventory.find(session, MODELS[kind], name, body.cluster)
    row = repo.target_row(session, kind, entity.id, entity.cluster_id)
    fields = body.model_fields_set
    if "actuator" in fields and body.actuator is not None and body.actuator not in ACTUATORS:
        raise InvalidInput(
            f"unknown actuator {body.actuator!r}; known: {', '.join(ACTUATORS)}",
            details=[{"loc": ["body", "actuator"]}],
        )
    if "cadence_seconds" in fields:
        row.cadence_seconds = body.cadence_seconds
        row.next_due_at = min(row.next_due_at, utcnow() + timedelta(seconds=body.cadence_seconds or 0))
    if "actuator" in fields:
        row.actuator = body.actuator
    if "frozen" in fields and body.frozen is not None:
        _freeze(row, body.frozen, body.reason, actor)
    session.flush()
    return _out(session, settings, row)


def set_fleet_freeze(
    session: Session, settings: Settings, frozen: bool, reason: str | None, actor: str
) -> LoopStatus:
    row = repo.global_switch(session)
    if row is None:
        row = LoopTarget(target_kind="global", target_id=0, next_due_at=utcnow(), last_detail={})
        session.add(row)
    _freeze(row, frozen, reason, actor)
    session.flush()
    return status(session, settings)


def _freeze(row: LoopTarget, frozen: bool, reason: str | None, actor: str) -> None:
    row.frozen = frozen
    row.frozen_reason = reason if frozen else None
    row.frozen_by = actor if frozen else None
    row.frozen_at = utcnow() if frozen else None
