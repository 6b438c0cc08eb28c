"""Telemetry: a series is one metric of one entity (with labels); samples are its (ts, value) points."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, JSONDocument, UTCDateTime, utcnow

ENTITY_KINDS = ("cluster", "node", "workload", "power_domain")


class Series(Base):
    """Unique by (cluster, entity kind, entity name, metric, labels); `labels_key` is the canonical labels."""

    __tablename__ = "series"
    __table_args__ = (
        UniqueConstraint("cluster_id", "entity_kind", "entity_name", "metric", "labels_key"),
        Index("ix_series_metric", "metric"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    entity_kind: Mapped[str] = mapped_column(String(32))
    entity_name: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(32))
    labels: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    labels_key: Mapped[str] = mapped_column(String(1000), default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Sample(Base):
    """One observation. The primary key (series_id, ts) makes a resent sample a no-op.

    No foreign key to `series` on purpose: a per-row RI check halves COPY throughput on this hot table,
    and ingestion only writes ids it resolved in the same transaction. Deleting a series must delete its
    samples explicitly.
    """

    __tablename__ = "samples"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - the composite key is the row's identity

    series_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
