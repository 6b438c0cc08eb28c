"""What Foresight decides and learns: node events, decisions, their outcomes, and the model registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, JSONDocument, UTCDateTime, utcnow

DECISION_STATUSES = ("proposed", "approved", "rejected", "applied", "expired")


class NodeEvent(Base):
    """An unhealthy-node signal with its context, the action taken and the downtime that followed."""

    __tablename__ = "node_events"
    __table_args__ = (Index("ix_node_events_node_ts", "node_id", "ts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    signals: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    action_taken: Mapped[str | None] = mapped_column(String(64))
    downtime_minutes: Mapped[float | None] = mapped_column(Float)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Decision(Base):
    """A recommended action with its evidence (`explanation`) and its life: proposed → applied/…"""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_status_created", "status", "created_at"),
        Index("ix_decisions_target", "cluster_id", "target_name", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    cluster_id: Mapped[int | None] = mapped_column(ForeignKey("clusters.id", ondelete="SET NULL"))
    target_kind: Mapped[str] = mapped_column(String(32))
    target_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    mode: Mapped[str] = mapped_column(String(16), default="approve", server_default="approve")
    explanation: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    policy: Mapped[str | None] = mapped_column(String(100))
    actor: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DecisionEvent(Base):
    """The audit trail of a decision: every status change with who made it, when and why."""

    __tablename__ = "decision_events"
    __table_args__ = (Index("ix_decision_events_ts", "ts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"), index=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(1000))


class Outcome(Base):
    """What was measured after a decision was applied: downtime, SLA, power."""

    __tablename__ = "outcomes"
    __table_args__ = (UniqueConstraint("decision_id", name="uq_outcomes_decision_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"), index=True)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    downtime_minutes: Mapped[float | None] = mapped_column(Float)
    sla_violation_rate: Mapped[float | None] = mapped_column(Float)
    power_watts: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)


class ModelRecord(Base):
    """Registry of trained forecasters and policies: params, backtest metrics and the artifact."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    training_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    training_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
