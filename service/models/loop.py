"""The control loop's state: which targets it decides for, when each is due, who holds it now, the
kill switches; and every actuation attempt with its result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, JSONDocument, UTCDateTime, utcnow

TARGET_KINDS = ("workload", "power_domain", "node", "global")
"""`global` is the one row holding the fleet-wide kill switch (target_id 0)."""


class LoopTarget(Base):
    """One thing the loop decides for, on its own cadence. Replicas claim due rows (Postgres `FOR UPDATE
    SKIP LOCKED`, then a lease), so no target is decided twice at once."""

    __tablename__ = "loop_targets"
    __table_args__ = (
        UniqueConstraint("target_kind", "target_id"),
        Index("ix_loop_targets_due", "next_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    target_kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int] = mapped_column(Integer)
    cluster_id: Mapped[int | None] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    cadence_seconds: Mapped[float | None] = mapped_column(Float)
    """None: the service default (`FORESIGHT_LOOP_CADENCE_SECONDS`)."""
    actuator: Mapped[str | None] = mapped_column(String(32))
    """None: the service default (`FORESIGHT_ACTUATOR`)."""
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    frozen_reason: Mapped[str | None] = mapped_column(String(500))
    frozen_by: Mapped[str | None] = mapped_column(String(200))
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_detail: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    last_data_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """The newest input sample the last decision read: no new data, no new forecast."""
    live_decision_id: Mapped[int | None] = mapped_column(Integer)
    """The loop's decision in force for the target (made or confirmed by its last pass), which the
    recommendation endpoint serves while it is fresh."""


class Actuation(Base):
    """One attempt to carry a decision to the cluster, and what the cluster said."""

    __tablename__ = "actuations"

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    actuator: Mapped[str] = mapped_column(String(32))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(1000))
    observed: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    actor: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
