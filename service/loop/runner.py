"""One pass of the control loop: claim the targets that are due, decide for each, carry out what their
mode allows, and hand them back with their next due time.

Per target, in its own transaction (one failing target never stops the others, and never leaves half a
decision behind):

* a workload: read its replicas from telemetry when the cluster reports them; when its load has a sample
  newer than the last pass (or the last decision has expired), train or refresh the interference model
  of its `performance_metric` series when it declares one (`service/loop/interference.py`), decide its
  replicas — the forecast is
  computed once per new data and stored, so the recommendation endpoints and KEDA serve it — and, when
  it has per-replica usage series and no live right-sizing decision, its right-sizing;
* a power domain with a budget: decide its caps;
* a node with unresolved events: decide a mitigation for each event not decided yet.

Before the targets, nodes that send co-located probe series get their interference models the same
way. Recording a decision sets its actuation in motion (`service/decisions/actuation.py`). After the targets,
approved decisions whose earlier attempt asked to retry are tried again, and applied scaling decisions
get their outcome from what the cluster reached.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from service.config import Settings
from service.db import Database
from service.decisions import actuation
from service.decisions import scaling as scaling_decisions
from service.decisions import workload_state as state
from service.decisions.lifecycle import LOOP_ACTOR
from service.decisions.schemas import RightsizingRequest, ScalingRequest
from service.errors import DatabaseUnavailable, ForesightError
from service.integrations.rollup import roll_up_pods
from service.loop import interference, outcomes
from service.loop import repository as repo
from service.models import Cluster, Node, PowerDomain, Workload
from service.models.base import utcnow
from service.nodes import service as nodes
from service.nodes.schemas import MitigationRequest
from service.ops.logging import get_logger
from service.power import service as power
from service.power.schemas import PowerRequest

log = get_logger("foresight.loop")
RIGHTSIZING_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    entity_id: int
    cadence: float
    last_data_at: datetime | None
    last_detail: dict[str, Any]


@dataclass
class Outcome:
    status: str
    detail: dict[str, Any]
    data_at: datetime | None = None
    live_decision_id: int | None = None


def run_pass(database: Database, owner: str) -> dict[str, Any]:
    """Decide for every due target this replica can claim; returns counts for the job log."""
    settings = database.settings
    started = time.monotonic()
    now = utcnow()
    with database.session() as session:
        added, removed = repo.sync_targets(session, now)
    with database.session() as session:
        rolled_up = roll_up_pods(session)  # workload totals from pod series, before deciding on them
    with database.session() as session:
        probes = interference.ensure_node_models(session, settings)  # nodes' co-located probe benchmarks
    with database.session() as session:
        lease = timedelta(seconds=settings.loop_lease_seconds)
        claimed = [
            Claimed(
                t.id,
                t.target_kind,
                t.target_id,
                t.cadence_seconds or settings.loop_cadence_seconds,
                t.last_data_at,
                dict(t.last_detail or {}),
            )
            for t in repo.claim_due(session, now, settings.loop_batch_size, lease, owner)
        ]
    statuses: Counter[str] = Counter()
    for target in claimed:
        result = _decide(database, target)
        statuses[result.status] += 1
        with database.session() as session:
            ran = utcnow()
            repo.release(
                session,
                target.id,
                owner,
                next_due=ran + timedelta(seconds=target.cadence),
                status=result.status,
                detail=result.detail,
                data_at=result.data_at,
                ran_at=ran,
                live_decision_id=result.live_decision_id,
            )
    retried = _retry_pending(database)
    observed = outcomes.observe(database)
    return {
        "claimed": len(claimed),
        "added": added,
        "removed": removed,
        **dict(statuses),
        "retried": retried,
        "outcomes": observed,
        "rolled_up": rolled_up,
        **({"node_interference": probes} if any(probes.values()) else {}),
        "seconds": round(time.monotonic() - started, 3),
    }


def _decide(database: Database, target: Claimed) -> Outcome:
    try:
        with database.session() as session:
            if target.kind == "workload":
                return _workload(session, database.settings, target)
            if target.kind == "power_domain":
                return _power_domain(session, target)
            if target.kind == "node":
                return _node(session, database, target)
            return Outcome("skipped", {"reason": f"unknown target kind {target.kind!r}"})
    except DatabaseUnavailable:
        raise
    except ForesightError as error:
        return Outcome("error", {"error": error.message[:500]})
    except Exception as error:  # a bug must not stop the loop for every other target
        log.error(
            "loop_target_failed", target=target.id, error_type=type(error).__name__, error=str(error)[:300]
        )
        return Outcome("failed", {"error": f"{type(error).__name__}: {str(error)[:300]}"})


def _cluster_name(session: Session, cluster_id: int) -> str:
    cluster = session.get(Cluster, cluster_id)
    return cluster.name if cluster is not None else "default"


def _workload(session: Session, settings: Settings, target: Claimed) -> Outcome:
    workload = session.get(Workload, target.entity_id)
    if workload is None:
        return Outcome("skipped", {"reason": "the workload no longer exists"})
    cluster = _cluster_name(session, workload.cluster_id)
    checked = float(target.last_detail.get("rightsizing_checked_at", 0.0))
    detail: dict[str, Any] = {"rightsizing_checked_at": checked}
    reported = state.refresh_replicas(session, workload, cluster, 3 * target.cadence)
    if reported is not None:
        detail["replicas_reported"] = reported
    latest = state.latest_load_time(session, workload, cluster)
    live = state.live_loop_decision(session, workload)
    if latest is not None and target.last_data_at is not None and latest <= target.last_data_at and live:
        return Outcome(
            "unchanged",
            {**detail, "reason": "no new load sample since the last pass", "decision_id": live.id},
            latest,
            live.id,
        )
    trained = interference.ensure_workload_model(session, settings, workload, cluster)
    if trained is not None:
        detail["interference"] = trained
    decided = scaling_decisions.recommend_scaling(
        session, ScalingRequest(workload=workload.name, cluster=cluster), LOOP_ACTOR
    )
    detail.update(decision_id=decided.id, replicas=decided.params.get("replicas"), status=decided.status)
    if time.time() - checked > RIGHTSIZING_EVERY.total_seconds() and state.rightsizing_due(
        session, workload, cluster, RIGHTSIZING_EVERY
    ):
        detail["rightsizing_checked_at"] = time.time()
        try:
            sized = scaling_decisions.recommend_rightsizing(
                session, RightsizingRequest(workload=workload.name, cluster=cluster), LOOP_ACTOR
            )
            detail["rightsizing_decision_id"] = sized.id
        except ForesightError as error:
            detail["rightsizing"] = error.message[:300]
    return Outcome("decided", detail, latest, decided.id)


def _power_domain(session: Session, target: Claimed) -> Outcome:
    domain = session.get(PowerDomain, target.entity_id)
    if domain is None:
        return Outcome("skipped", {"reason": "the power domain no longer exists"})
    cluster = _cluster_name(session, domain.cluster_id)
    decided = power.recommend_power(session, PowerRequest(domain=domain.name, cluster=cluster), LOOP_ACTOR)
    return Outcome("decided", {"decision_id": decided.id, "action": decided.action, "status": decided.status})


def _node(session: Session, database: Database, target: Claimed) -> Outcome:
    node = session.get(Node, target.entity_id)
    if node is None:
        return Outcome("skipped", {"reason": "the node no longer exists"})
    cluster = _cluster_name(session, node.cluster_id)
    pending = nodes.undecided_events(session, node.id)
    decided = []
    for event_id in pending:
        request = MitigationRequest(node=node.name, cluster=cluster, event_id=event_id)
        decided.append(nodes.recommend(session, request, database.settings, LOOP_ACTOR).id)
    if not decided:
        return Outcome("unchanged", {"reason": "every open event has a decision"})
    return Outcome("decided", {"decision_ids": decided})


def _retry_pending(database: Database, limit: int = 50) -> int:
    """Approved decisions not carried out yet (an earlier attempt asked to retry, or an approval's
    after-commit attempt could not run): one more attempt each."""
    with database.session() as session:
        pending = repo.pending_actuation(session, utcnow(), limit)
    tried = 0
    for decision_id in pending:
        if actuation.actuate(database, decision_id, LOOP_ACTOR) is not None:
            tried += 1
    return tried
