"""Carry a decision to the cluster through its target's actuator, safely, and record every attempt.

Safety, in order: the fleet-wide switch (`FORESIGHT_ACTUATION_ENABLED`, or a freeze through the API) and
the target's own freeze stop actuation (decisions are still made and recorded); a scaling change is
clamped to `FORESIGHT_ACTUATION_MAX_CHANGE_FRACTION` / `_PODS` of the workload per
`FORESIGHT_ACTUATION_PERIOD_SECONDS`; a decision already carried out, expired, or being carried out by
another replica is left alone (the decision id is the idempotency key, so a resend changes nothing).

Each attempt is two short transactions around the call to the cluster (no database lock is held while
the cluster answers): the first checks and writes a `started` attempt, the second writes the result and
moves the decision — `applied` when the cluster took it, `failed` with the reason when it refused for good
or attempts ran out; a transient refusal (409 retries spent, 429 from a PodDisruptionBudget, a timeout)
leaves it `approved` for the loop to retry. Dry runs (approve mode) change no status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from service.actuators.base import ActuationRequest, ActuationResult
from service.actuators.registry import actuator_for
from service.config import Settings
from service.db import Database, database_of, on_commit
from service.decisions import lifecycle as decisions
from service.decisions import repository as repo
from service.inventory import service as inventory
from service.loop import repository as loop
from service.models import Actuation, Decision, Workload
from service.models.base import utcnow
from service.ops.logging import get_logger
from service.ops.metrics import ACTUATIONS

log = get_logger("foresight.actuation")
ACTUATED_KINDS = ("scaling", "mitigation", "power", "rightsizing")
STARTED_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class Gate:
    actuator: str
    frozen: str | None
    """Why actuation is frozen now (None: it is not)."""


def gate(session: Session, settings: Settings, row: Decision) -> Gate:
    """Which actuator carries `row` out, and whether a kill switch stops it."""
    target = loop.target_of_decision(session, row)
    actuator = target.actuator if target is not None and target.actuator else settings.actuator
    if not settings.actuation_enabled:
        return Gate(actuator, "actuation is disabled (FORESIGHT_ACTUATION_ENABLED=false)")
    fleet = loop.global_switch(session)
    if fleet is not None and fleet.frozen:
        return Gate(
            actuator, f"fleet frozen by {fleet.frozen_by}: {fleet.frozen_reason or 'no reason given'}"
        )
    if target is not None and target.frozen:
        return Gate(actuator, f"target frozen by {target.frozen_by}: {target.frozen_reason or 'no reason'}")
    return Gate(actuator, None)


def after_recording(session: Session, settings: Settings, row: Decision) -> None:
    """What recording a decision sets in motion: in `auto` mode it is approved and carried out (at once
    when its actuator records only; after the commit otherwise); in `approve` mode a real actuator
    validates it with a dry run after the commit; `shadow` does nothing."""
    if row.mode == "shadow":
        return
    chosen = gate(session, settings, row)
    if row.mode == "auto":
        if row.kind not in ACTUATED_KINDS or (chosen.actuator == "none" and chosen.frozen is None):
            decisions.move_status(
                session, row, "applied", decisions.AUTO_ACTOR, "auto mode: applied when made"
            )
            return
        decisions.move_status(
            session,
            row,
            "approved",
            decisions.AUTO_ACTOR,
            f"auto mode: carried out by the {chosen.actuator} actuator",
        )
        schedule(session, row.id, decisions.AUTO_ACTOR)
    elif row.mode == "approve" and chosen.actuator != "none" and row.kind in ACTUATED_KINDS:
        schedule(session, row.id, decisions.POLICY_ACTOR, dry_run=True)


def schedule(session: Session, decision_id: int, actor: str, *, dry_run: bool = False) -> None:
    """Actuate `decision_id` once the unit of work `session` belongs to has committed."""
    database = database_of(session)
    on_commit(session, lambda: _quietly(database, decision_id, actor, dry_run))


def _quietly(database: Database, decision_id: int, actor: str, dry_run: bool) -> None:
    try:
        actuate(database, decision_id, actor, dry_run=dry_run)
    except Exception as error:  # the caller's work is committed; the loop retries approved decisions
        log.warning("actuation_deferred", decision_id=decision_id, error_type=type(error).__name__)


def actuate(
    database: Database, decision_id: int, actor: str, *, dry_run: bool = False
) -> ActuationResult | None:
    """One attempt at carrying the decision out (None when there was nothing to do)."""
    settings = database.settings
    with database.session() as session:
        prepared = _prepare(session, settings, decision_id, actor, dry_run)
    if prepared is None or isinstance(prepared, ActuationResult):
        return prepared
    attempt_id, actuator_name, request = prepared
    try:
        result = actuator_for(actuator_name, settings).apply(request)
    except Exception as error:  # an actuator must not raise; if one does, the attempt still ends
        result = ActuationResult("failed", f"{type(error).__name__}: {str(error)[:300]}")
    with database.session() as session:
        _finish(session, settings, decision_id, attempt_id, request, result, actor)
    ACTUATIONS.labels(actuator_name, request.kind, result.status, str(dry_run).lower()).inc()
    return result


def _prepare(
    session: Session, settings: Settings, decision_id: int, actor: str, dry_run: bool
) -> tuple[int, str, ActuationRequest] | ActuationResult | None:
    row = repo.get_for_update(session, decision_id)
    wanted = "proposed" if dry_run else "approved"
    if row is None or row.status != wanted or row.kind not in ACTUATED_KINDS:
        return None
    now = utcnow()
    if row.expires_at is not None and row.expires_at < now:
        decisions.move_status(session, row, "expired", decisions.POLICY_ACTOR, "its window passed first")
        return None
    attempts = loop.attempts_of(session, [row.id]).get(row.id, [])
    if any(a.status == "started" and a.started_at > now - STARTED_LEASE for a in attempts):
        return None  # another replica is carrying it out right now
    chosen = gate(session, settings, row)
    if chosen.actuator == "none":
        return None  # recorded only: an external actuator reports with POST /v1/decisions/{id}/apply
    last = attempts[-1] if attempts else None
    if last is not None and last.status == "retry_later" and last.finished_at > now - _backoff(len(attempts)):
        return None
    number = len(attempts) + 1
    if chosen.frozen is not None:
        detail = f"frozen: {chosen.frozen}"
        if not attempts or attempts[-1].detail != detail:  # one entry per freeze, not one per pass
            _attempt(session, row, number, chosen.actuator, dry_run, "skipped", detail, actor)
        return ActuationResult("skipped", detail)
    params, note = _safe_params(session, settings, row, now)
    request = ActuationRequest(row.id, row.kind, row.action, _target_of(session, row), params, dry_run)
    started = _attempt(session, row, number, chosen.actuator, dry_run, "started", note or "", actor)
    return started.id, chosen.actuator, request


def _backoff(attempts: int) -> timedelta:
    """How long after its `attempts`-th transient refusal a decision is tried again (doubling, ≤ 5 min)."""
    return timedelta(seconds=min(5.0 * 2 ** (attempts - 1), 300.0))


def _attempt(
    session: Session,
    row: Decision,
    number: int,
    actuator: str,
    dry_run: bool,
    status: str,
    detail: str,
    actor: str,
) -> Actuation:
    return loop.add_attempt(
        session,
        Actuation(
            decision_id=row.id,
            attempt=number,
            actuator=actuator,
            dry_run=dry_run,
            status=status,
            detail=detail[:1000],
            observed={},
            actor=actor,
            started_at=utcnow(),
            finished_at=utcnow(),
        ),
    )


def _target_of(session: Session, row: Decision) -> str:
    """How the cluster names the target: a workload's scale target (`namespace/kind/name`) or name."""
    if row.kind in ("scaling", "rightsizing"):
        workload = _workload(session, row)
        if workload is not None and workload.scale_target:
            return workload.scale_target
    return row.target_name


def _workload(session: Session, row: Decision) -> Workload | None:
    return inventory.workload_in_cluster(session, row.cluster_id, row.target_name)


def _safe_params(
    session: Session, settings: Settings, row: Decision, now: datetime
) -> tuple[dict[str, Any], str | None]:
    """The decision's params, a scaling change clamped to the per-period limit (and why)."""
    params = dict(row.params)
    if row.kind != "scaling" or not isinstance(params.get("replicas"), int):
        return params, None
    workload = _workload(session, row)
    current = workload.replicas if workload is not None else int(params.get("previous_replicas", 0))
    since = now - timedelta(seconds=settings.actuation_period_seconds)
    moved = sum(
        abs(change) for _, change in loop.recent_changes(session, row.cluster_id, row.target_name, since)
    )
    allowed = (
        max(
            math.ceil(settings.actuation_max_change_fraction * max(current, 1)),
            settings.actuation_max_change_pods,
        )
        - moved
    )
    wanted = params["replicas"]
    step = max(min(abs(wanted - current), max(allowed, 0)), 0)
    params["previous_replicas"] = current
    if step == abs(wanted - current):
        return params, None
    params["replicas"] = current + step if wanted > current else current - step
    limit = allowed + moved
    period = settings.actuation_period_seconds
    note = f"safety: {wanted} clamped to {params['replicas']} (at most {limit} replicas change per "
    return params, note + f"{period:g} s; {moved} changed already)"


def _finish(
    session: Session,
    settings: Settings,
    decision_id: int,
    attempt_id: int,
    request: ActuationRequest,
    result: ActuationResult,
    actor: str,
) -> None:
    attempt = session.get(Actuation, attempt_id)
    row = repo.get_for_update(session, decision_id)
    if attempt is None or row is None:
        return
    observed = dict(result.observed)
    if request.kind == "scaling" and "replicas" in request.params:
        observed.setdefault("replicas", request.params["replicas"])
        observed["change"] = int(request.params["replicas"]) - int(request.params.get("previous_replicas", 0))
    attempt.status, attempt.observed, attempt.finished_at = result.status, observed, utcnow()
    attempt.detail = ((attempt.detail + "; ") if attempt.detail else "") + result.detail
    attempt.detail = attempt.detail[:1000]
    note = f"{attempt.actuator} attempt {attempt.attempt}: {result.status}: {attempt.detail}"[:1000]
    if request.dry_run or row.status != "approved":
        decisions.add_note(session, row, actor, note)
        return
    if result.ok:
        row.params = {**row.params, **{k: v for k, v in request.params.items() if k == "replicas"}}
        decisions.move_status(session, row, "applied", actor, note)
        workload = _workload(session, row) if request.kind == "scaling" else None
        if workload is not None:
            workload.replicas = int(request.params["replicas"])
    elif not result.retryable or attempt.attempt >= settings.actuation_max_attempts:
        decisions.move_status(session, row, "failed", actor, note)
    else:
        decisions.add_note(session, row, actor, note + " (will retry)")
