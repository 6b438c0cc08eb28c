"""What the control loop and the scaling endpoint know about a workload between decisions: the replicas
the cluster reports, when its load last moved, the loop's live decision (served instead of deciding
again while nothing changed), and its HPA-style behavior applied to a recommendation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from policies.behavior import Behavior, ScaleHistory, apply_behavior
from policies.types import Decision as PolicyDecision
from service import readings as read
from service.decisions import repository as repo
from service.decisions.lifecycle import LOOP_ACTOR
from service.loop import repository as loop
from service.models import Decision, Workload

DEFAULT_LOAD_METRIC = "requests_per_second"


def load_metric(workload: Workload) -> str:
    return workload.capacity_metric or DEFAULT_LOAD_METRIC


def refresh_replicas(
    session: Session, workload: Workload, cluster: str, max_age_seconds: float
) -> int | None:
    """Take the workload's replicas from the cluster's own report (kube-state-metrics) when a fresh one
    exists: decisions start from what runs, not from a number set once with PUT."""
    reported = read.current_replicas(session, cluster, workload.name, max_age_seconds)
    if reported is None:
        return None
    workload.replicas = reported[0]
    return reported[0]


def latest_load_time(session: Session, workload: Workload, cluster: str) -> datetime | None:
    series = read.find_series(session, cluster, "workload", workload.name, load_metric(workload))
    if series is None:
        return None
    seen = read.observed(session, series.id, count=1)
    return datetime.fromtimestamp(seen.last_ts, UTC) if seen.last_ts is not None else None


def live_loop_decision(session: Session, workload: Workload, kind: str = "scaling") -> Decision | None:
    """The newest unexpired decision of `kind` the loop made for the workload."""
    row = repo.latest_live(session, kind, workload.cluster_id, workload.name, datetime.now(UTC))
    if row is None or (row.explanation or {}).get("requested_by") != LOOP_ACTOR:
        return None
    return row


def fresh_loop_answer(
    session: Session, workload: str, cluster: str | None, cadence_seconds: float
) -> Decision | None:
    """The loop's scaling decision while it is the answer: in force, and made or confirmed (a pass that
    found no new data confirms it) by the loop within the last cadence — so an answer is at most one
    cadence old, and the endpoint does not forecast or decide again."""
    now = datetime.now(UTC)
    return loop.served_decision(session, workload, cluster, now - timedelta(seconds=cadence_seconds), now)


def rightsizing_due(session: Session, workload: Workload, cluster: str, every: timedelta) -> bool:
    """A right-sizing decision is due when none is live or the last is older than `every`."""
    row = repo.latest_live(session, "rightsizing", workload.cluster_id, workload.name, datetime.now(UTC))
    return row is None or row.created_at < datetime.now(UTC) - every


def apply_workload_behavior(
    session: Session, workload: Workload, decision: PolicyDecision, now: datetime
) -> None:
    """Apply the workload's HPA-style `behavior` (when it has one) to the policy's answer, as guardrails
    in the decision's evidence."""
    if not workload.behavior or not isinstance(decision.params.get("replicas"), int):
        return
    behavior = Behavior.from_mapping(workload.behavior)
    window = max(
        behavior.scale_up.stabilization_window_seconds, behavior.scale_down.stabilization_window_seconds
    )
    periods = [p.period_seconds for rules in (behavior.scale_up, behavior.scale_down) for p in rules.policies]
    since = now - timedelta(seconds=max([window, *periods, 1]))
    recommendations = repo.recent_wanted(session, "scaling", workload.cluster_id, workload.name, since)
    changes = loop.recent_changes(session, workload.cluster_id, workload.name, since)
    history = ScaleHistory(
        recommendations=[(ts.timestamp(), n) for ts, n in recommendations],
        changes=[(ts.timestamp(), d) for ts, d in changes],
    )
    result = apply_behavior(
        behavior,
        decision.params["replicas"],
        workload.replicas,
        now.timestamp(),
        history,
        workload.min_replicas,
        workload.max_replicas,
    )
    if result.effects:
        decision.guardrails.extend(result.effects)
        decision.params["replicas"] = result.replicas
        current, final = workload.replicas, result.replicas
        decision.action = "scale_out" if final > current else "scale_in" if final < current else "hold"
