"""First start of the demo: the inventory (three shadow-mode workloads, a GPU power domain of four
servers, the NAB nodes) and every series' history up to the present; right after start (`ensure_events`,
from the runner) a fleet history of node events with their actions and downtimes, so the causal
mitigation model can train at once, plus one open event.
Everything goes through the same service functions as the API; the grid is kept in `job_runs`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from policies.mitigation_rules import legacy_action
from policies.mitigation_synthetic import generate, sample_downtime
from policies.mitigation_types import NodeEvent as PolicyEvent
from service.config import Settings
from service.demo import catalog, clock
from service.inventory import service as inventory
from service.inventory.schemas import NodeConfig, PowerDomainConfig, WorkloadConfig
from service.models import JobRun, Node, NodeEvent, Series
from service.nodes import service as nodes
from service.nodes.schemas import BulkNodeEvent, BulkNodeEvents, NodeEventIn
from service.telemetry import service as telemetry

STATE = "demo_stream"
HISTORY_EVENTS = 400
HISTORY_DAYS = 30
BATCH = 20_000


def gpu_nodes() -> list[str]:
    return [f"gpu-{j}" for j in range(catalog.GPU_SERVERS)]


def state(session: Session) -> dict[str, Any] | None:
    row = session.get(JobRun, STATE)
    return dict(row.last_detail) if row is not None and row.last_detail else None


def save_state(session: Session, speed: float, tracks: list[clock.Track]) -> None:
    row = session.get(JobRun, STATE) or JobRun(name=STATE)
    row.last_status, row.last_started, row.last_finished = "ok", datetime.now(UTC), datetime.now(UTC)
    row.last_detail = {"speed": speed, "tracks": {t.series.key: [t.anchor, t.step] for t in tracks}}
    session.add(row)


def document(items: list[tuple[catalog.DemoSeries, list[tuple[float, float]]]]) -> dict[str, Any]:
    """The ingest wire format of a list of (series, samples)."""
    return {
        "series": [
            {"entity": {"kind": s.kind, "id": s.entity, "cluster": catalog.CLUSTER}, "metric": s.metric,
             "unit": s.unit, "samples": [[ts, value] for ts, value in samples]}
            for s, samples in items if samples
        ]
    }  # fmt: skip


def set_up(session: Session, settings: Settings, now: float | None = None) -> int:
    """Create the demo on an empty database; returns the samples stored (0: nothing done)."""
    if session.scalar(select(func.count()).select_from(Series)) or state(session) is not None:
        return 0
    start = time.time() if now is None else now
    tracks = [clock.new_track(s, start, settings.demo_speed) for s in catalog.all_series()]
    stored = 0
    for track in tracks:
        samples = clock.history(track)
        for i in range(0, len(samples), BATCH):
            part = document([(track.series, samples[i : i + BATCH])])
            stored += telemetry.ingest_document(session, part, settings).accepted
    _inventory(session)
    save_state(session, settings.demo_speed, tracks)
    return stored


def _inventory(session: Session) -> None:
    slo = {"cost_per_replica": 1.0}
    for w in catalog.workloads():
        config = WorkloadConfig(cluster=catalog.CLUSTER, replicas=catalog.PEAK_REPLICAS // 2, min_replicas=1,
                                max_replicas=w.max_replicas, replica_capacity=w.replica_capacity,
                                capacity_metric=w.metric, mode="shadow", slo=slo)  # fmt: skip
        inventory.configure_workload(session, w.name, config)
    budget = catalog.domain_budget()
    domain = PowerDomainConfig(cluster=catalog.CLUSTER, budget_watts=budget, mode="shadow")
    inventory.configure_domain(session, catalog.POWER_DOMAIN, domain)
    for j, name in enumerate(gpu_nodes()):
        hardware = {"profile": "a100", "gpus": catalog.GPUS_PER_SERVER, "priority": j % 2,
                    "host_watts": catalog.HOST_WATTS}  # fmt: skip
        node = NodeConfig(cluster=catalog.CLUSTER, pool="gpu", power_domain=catalog.POWER_DOMAIN,
                          hardware=hardware)  # fmt: skip
        inventory.configure_node(session, name, node)


def ensure_events(session: Session, start: float) -> bool:
    """The GPU nodes' event history, once (the runner adds it right after start: 400 events take a few
    seconds to store, which the first forecasts should not wait for). True when it was added now."""
    query = select(func.count()).select_from(NodeEvent).join(Node, Node.id == NodeEvent.node_id)
    if session.scalar(query.where(Node.name.in_(gpu_nodes()))):
        return False
    _events(session, start)
    return True


def _events(session: Session, start: float) -> None:
    """A month of resolved events (semi-synthetic, `policies/mitigation_synthetic.py`) and one open."""
    history = generate(HISTORY_EVENTS, seed=0)
    first = start - HISTORY_DAYS * 86_400
    spacing = HISTORY_DAYS * 86_400 / HISTORY_EVENTS
    names = gpu_nodes()
    events = [
        BulkNodeEvent(node=names[i % len(names)], cluster=catalog.CLUSTER, ts=first + i * spacing,
                      kind=r.kind, severity=r.severity, signals=r.signals, context=r.context,
                      action_taken=r.action, downtime_minutes=round(float(r.downtime_minutes or 0.0), 3))
        for i, r in enumerate(history.records)
    ]  # fmt: skip
    nodes.record_events(session, BulkNodeEvents(events=events))
    for row in session.scalars(select(NodeEvent).where(NodeEvent.resolved_at.is_(None))):
        if row.downtime_minutes is not None:
            row.resolved_at = row.ts + timedelta(minutes=row.downtime_minutes)
    open_event(session, names[-1], start, seed=HISTORY_EVENTS)


def open_event(session: Session, node: str, ts: float, seed: int) -> None:
    """A new unhealthy-node event (no action yet): the node turns unhealthy, the loop decides for it."""
    record = generate(1, seed=seed).records[0]
    body = NodeEventIn(cluster=catalog.CLUSTER, ts=ts, kind=record.kind, severity=record.severity,
                       signals=record.signals, context=record.context)  # fmt: skip
    nodes.record_event(session, node, body)
    cluster_id = session.scalar(select(Node.cluster_id).where(Node.name == node))
    inventory.set_node_status(session, cluster_id, node, "unhealthy")


def resolve_events(session: Session, older_than: datetime, seed: int) -> int:
    """Open demo events older than `older_than` end: the node is repaired by the action the fleet's
    legacy rule would log, its downtime drawn from the structural model; the event joins the history."""
    rng = np.random.default_rng(seed)
    done = 0
    rows = session.execute(
        select(NodeEvent, Node).join(Node, Node.id == NodeEvent.node_id)
        .where(NodeEvent.resolved_at.is_(None), NodeEvent.ts < older_than, Node.name.in_(gpu_nodes()))
    ).all()  # fmt: skip
    for event, node in rows:
        seen = PolicyEvent(dict(event.signals), dict(event.context), event.kind, event.severity)
        action = legacy_action(seen)[0]
        downtime = round(sample_downtime(seen, action, rng), 3)
        session.execute(
            update(NodeEvent).where(NodeEvent.id == event.id)
            .values(action_taken=action, downtime_minutes=downtime, resolved_at=datetime.now(UTC))
        )  # fmt: skip
        inventory.set_node_status(session, node.cluster_id, node.name, "healthy")
        done += 1
    return done
