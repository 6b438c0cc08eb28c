"""What Foresight manages: clusters, their nodes, workloads and power domains."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.models.base import Base, JSONDocument, UTCDateTime, utcnow


class Cluster(Base):
    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PowerDomain(Base):
    """A set of servers sharing one power budget (a rack, a row, a PDU)."""

    __tablename__ = "power_domains"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    budget_watts: Mapped[float | None] = mapped_column(Float)
    mode: Mapped[str] = mapped_column(String(16), default="shadow", server_default="shadow")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    cluster: Mapped[Cluster] = relationship(lazy="raise")


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    pool: Mapped[str | None] = mapped_column(String(200))
    power_domain_id: Mapped[int | None] = mapped_column(ForeignKey("power_domains.id", ondelete="SET NULL"))
    hardware: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    status: Mapped[str] = mapped_column(String(32), default="healthy")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    cluster: Mapped[Cluster] = relationship(lazy="raise")


class Workload(Base):
    """A scalable service: replicas, what one replica can take, its SLO and how decisions apply."""

    __tablename__ = "workloads"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    min_replicas: Mapped[int] = mapped_column(Integer, default=1)
    max_replicas: Mapped[int | None] = mapped_column(Integer)
    replica_capacity: Mapped[float | None] = mapped_column(Float)
    capacity_metric: Mapped[str | None] = mapped_column(String(200))
    slo: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    mode: Mapped[str] = mapped_column(String(16), default="shadow")
    scale_target: Mapped[str | None] = mapped_column(String(400))
    """`namespace/kind/name` the actuator scales (as an HPA's scaleTargetRef); None: the name itself when it
    has that form."""
    behavior: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    performance_metric: Mapped[str | None] = mapped_column(String(200))
    """The workload's performance series (per-replica throughput, latency, or a co-located probe): an
    interference model trained on it says how much capacity noisy neighbours take."""
    """HPA-style `behavior` (scaleUp / scaleDown stabilization and policies, tolerance); None: defaults."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    cluster: Mapped[Cluster] = relationship(lazy="raise")
