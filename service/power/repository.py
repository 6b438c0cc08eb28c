"""SQL of the power recommendations: the latest power readings of a domain's nodes and the domain's
earlier power decisions (current caps, hysteresis state)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from service.models import Decision, Sample, Series
from service.models.base import to_epoch_us

NODE_METRIC = "node_power_watts"
GPU_METRIC = "gpu_power_watts"


@dataclass(frozen=True)
class Reading:
    """The latest sample of one power series of a node."""

    node: str
    metric: str
    labels: dict[str, Any]
    ts: float
    value: float


def latest_readings(session: Session, cluster_id: int, nodes: Sequence[str]) -> list[Reading]:
    """Latest sample of every `node_power_watts` / `gpu_power_watts` series of these nodes (one query)."""
    if not nodes:
        return []
    wanted = (
        select(Series.id)
        .where(Series.cluster_id == cluster_id, Series.entity_kind == "node")
        .where(Series.entity_name.in_(list(nodes)), Series.metric.in_((NODE_METRIC, GPU_METRIC)))
    )
    last = (
        select(Sample.series_id, func.max(Sample.ts).label("ts"))
        .where(Sample.series_id.in_(wanted))
        .group_by(Sample.series_id)
        .subquery()
    )
    rows = session.execute(
        select(Series.entity_name, Series.metric, Series.labels, Sample.ts, Sample.value)
        .join(last, last.c.series_id == Series.id)
        .join(Sample, and_(Sample.series_id == last.c.series_id, Sample.ts == last.c.ts))
        .order_by(Series.entity_name, Series.id)
    ).all()
    return [
        Reading(node, metric, labels or {}, to_epoch_us(ts) / 1e6, float(value))
        for node, metric, labels, ts, value in rows
    ]


def latest_decision(
    session: Session, cluster_id: int, target: str, statuses: tuple[str, ...] | None = None
) -> Decision | None:
    """The domain's newest power decision (only those with one of `statuses` when given)."""
    query = select(Decision).where(
        Decision.kind == "power", Decision.target_name == target, Decision.cluster_id == cluster_id
    )
    if statuses is not None:
        query = query.where(Decision.status.in_(statuses))
    return session.scalars(query.order_by(Decision.created_at.desc(), Decision.id.desc()).limit(1)).first()
