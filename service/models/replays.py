"""Replay runs started over the API: what was asked, how far it got, and its results (written at once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, JSONDocument, UTCDateTime, utcnow

REPLAY_STATUSES = ("queued", "running", "succeeded", "failed")


class ReplayRun(Base):
    """One `replay run` or `replay compare`; `summary`, `report` and `timeline` appear together when it
    succeeds, `error` says why when it fails."""

    __tablename__ = "replays"
    __table_args__ = (Index("ix_replays_created", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    trace: Mapped[str] = mapped_column(String(200))
    trace_format: Mapped[str] = mapped_column(String(32))
    policies: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    seeds: Mapped[int] = mapped_column(Integer, default=1)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    report_gz: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    timeline_gz: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    trace_csv_gz: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
