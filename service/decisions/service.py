"""Decision lifecycle: record a policy's Decision by the workload's mode, approve / reject / apply with the
actor in the audit trail, record outcomes (which feed adaptive ε and the causal training data).

Status moves only along: proposed → approved | rejected | applied | expired, approved → applied | expired.
`shadow` decisions are records of what Foresight would have done: nobody approves them. `auto` decisions
are applied when made (actor `foresight:auto`); the actuator (KEDA, an operator script) reads them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from policies.types import Decision as PolicyDecision
from policies.types import build_policy, jsonable, registered_policies
from service.db import database_of
from service.decisions import actuation
from service.decisions import repository as repo
from service.decisions.lifecycle import POLICY_ACTOR, add_note, move_status, now
from service.decisions.schemas import (
    ActuationOut,
    DecisionEventOut,
    DecisionOut,
    DecisionPage,
    OutcomeIn,
    OutcomeOut,
)
from service.errors import Conflict, InvalidInput, NotFound
from service.loop import repository as loop_repo
from service.models import Decision, Outcome
from service.nodes import lifecycle as nodes


def policy_named(name: str, kind: str) -> Any:
    """A registered policy of `kind` by name, or a 422 listing the known ones."""
    known = registered_policies(kind)
    if name not in known:
        raise InvalidInput(
            f"unknown {kind} policy {name!r}; known: {', '.join(known)}",
            details=[{"loc": ["body", "policy"], "msg": f"one of {sorted(known)}"}],
        )
    return build_policy(name)


def record(
    session: Session,
    decision: PolicyDecision,
    *,
    cluster_id: int | None,
    target_kind: str,
    mode: str,
    valid_for: timedelta,
    requested_by: str,
    cluster_name: str | None = None,
) -> DecisionOut:
    """Store a policy's Decision as a `decisions` row with its evidence; `auto` mode applies it at once.
    With `cluster_name` the answer is built without reading back what was just written."""
    row = _row(decision, cluster_id, target_kind, mode, valid_for, requested_by)
    note = f"recommended by {decision.policy} for {requested_by}"
    repo.add_decision(session, row, POLICY_ACTOR, note)
    history = [
        DecisionEventOut(
            ts=row.created_at, actor=POLICY_ACTOR, from_status=None, to_status="proposed", note=note
        )
    ]
    actuation.after_recording(session, database_of(session).settings, row)
    if (cluster_name is None and cluster_id is not None) or row.status != "proposed":
        return to_out(session, row)
    return _out(row, cluster_name, history, None)


def preview(
    session: Session,
    decision: PolicyDecision,
    *,
    cluster_id: int | None,
    target_kind: str,
    valid_for: timedelta,
    requested_by: str,
) -> DecisionOut:
    """A policy's Decision as the API shows one, without storing it (id 0, no history): the answer of
    a read-only question (a GET writes nothing)."""
    row = _row(decision, cluster_id, target_kind, "shadow", valid_for, requested_by)
    row.id = 0
    row.explanation["recorded"] = False
    cluster = repo.cluster_names(session, [cluster_id]).get(cluster_id) if cluster_id else None
    return _out(row, cluster, [], None)


def _row(
    decision: PolicyDecision,
    cluster_id: int | None,
    target_kind: str,
    mode: str,
    valid_for: timedelta,
    requested_by: str,
) -> Decision:
    created = now()
    explanation = decision.explanation()
    explanation["requested_by"] = requested_by
    return Decision(
        kind=decision.kind,
        cluster_id=cluster_id,
        target_kind=target_kind,
        target_name=decision.target,
        action=decision.action,
        params=jsonable(decision.params),
        status="proposed",
        mode=mode,
        explanation=explanation,
        policy=decision.policy,
        actor=POLICY_ACTOR,
        created_at=created,
        updated_at=created,
        expires_at=created + valid_for,
    )


def _locked(session: Session, decision_id: int) -> Decision:
    row = repo.get_for_update(session, decision_id)
    if row is None:
        raise NotFound(f"decision {decision_id} does not exist; list decisions with GET /v1/decisions")
    return row


def _expire_if_due(session: Session, row: Decision) -> None:
    if row.status in ("proposed", "approved") and row.expires_at is not None and row.expires_at < now():
        move_status(session, row, "expired", POLICY_ACTOR, "its window passed before it was applied")


def verdict(session: Session, decision_id: int, status: str, actor: str, note: str | None) -> DecisionOut:
    """Approve or reject (operate scope; the actor is recorded). Shadow decisions cannot be acted on."""
    row = _locked(session, decision_id)
    if row.mode == "shadow":
        raise Conflict(
            f"decision {decision_id} was made in shadow mode (record only); switch the workload to "
            "`approve` mode with PUT /v1/workloads/{name} to act on new decisions"
        )
    _expire_if_due(session, row)
    if row.status == "expired":
        raise Conflict(
            f"decision {decision_id} expired at {row.expires_at:%Y-%m-%dT%H:%M:%SZ}; ask for a new one"
        )
    move_status(session, row, status, actor, note)
    if status == "approved":
        settings = database_of(session).settings
        if actuation.gate(session, settings, row).actuator != "none":
            actuation.schedule(session, row.id, actor)
    return to_out(session, row)


def mark_applied(session: Session, decision_id: int, actor: str, note: str | None) -> DecisionOut:
    """An actuator reports that it carried the decision out."""
    row = _locked(session, decision_id)
    if row.mode == "shadow":
        raise Conflict(f"decision {decision_id} was made in shadow mode (record only); it is never applied")
    if row.mode == "approve" and row.status == "proposed":
        raise Conflict(f"decision {decision_id} awaits approval; approve it first")
    _expire_if_due(session, row)
    move_status(session, row, "applied", actor, note)
    return to_out(session, row)


def record_outcome(
    session: Session, decision_id: int, body: OutcomeIn, actor: str
) -> tuple[OutcomeOut, bool]:
    """Store what happened (once; an identical resend is a no-op, a different one a 409). For a node
    mitigation, the downtime also completes the node event, which becomes causal training data."""
    row = _locked(session, decision_id)
    if row.status != "applied":
        raise Conflict(
            f"decision {decision_id} is {row.status}, not applied; outcomes are recorded for applied "
            f"decisions only (apply it with POST /v1/decisions/{decision_id}/apply once it was carried out)"
        )
    if body.violations is not None and (body.windows is None or body.violations > body.windows):
        raise InvalidInput(
            "violations needs windows, and cannot exceed it",
            details=[{"loc": ["body", "violations"], "msg": "0 <= violations <= windows"}],
        )
    details = {**body.details, "windows": body.windows, "violations": body.violations, "reported_by": actor}
    existing = repo.outcomes_of(session, [decision_id]).get(decision_id)
    if existing is not None:
        same = (
            existing.downtime_minutes,
            existing.sla_violation_rate,
            existing.power_watts,
            {k: v for k, v in existing.details.items() if k != "reported_by"},
        ) == (
            body.downtime_minutes,
            body.sla_violation_rate,
            body.power_watts,
            {k: v for k, v in details.items() if k != "reported_by"},
        )
        if not same:
            raise Conflict(
                f"decision {decision_id} already has a different outcome; outcomes are recorded once"
            )
        return outcome_out(existing), False
    outcome = repo.add_outcome(
        session,
        Outcome(
            decision_id=decision_id,
            measured_at=now(),
            downtime_minutes=body.downtime_minutes,
            sla_violation_rate=body.sla_violation_rate,
            power_watts=body.power_watts,
            details=details,
        ),
    )
    event_id = row.params.get("event_id")
    mitigated = row.kind == "mitigation" and row.status == "applied"
    if mitigated and event_id is not None and body.downtime_minutes is not None:
        nodes.mitigation_outcome(
            session,
            row.cluster_id,
            row.target_name,
            int(event_id),
            row.action,
            body.downtime_minutes,
            outcome.measured_at,
        )
    add_note(session, row, actor, "outcome recorded")
    return outcome_out(outcome), True


def outcome_out(o: Outcome) -> OutcomeOut:
    return OutcomeOut(
        decision_id=o.decision_id,
        measured_at=o.measured_at,
        downtime_minutes=o.downtime_minutes,
        sla_violation_rate=o.sla_violation_rate,
        power_watts=o.power_watts,
        windows=o.details.get("windows"),
        violations=o.details.get("violations"),
        details=o.details,
    )


_SERVED: OrderedDict[tuple[int, datetime, str], DecisionOut] = OrderedDict()
_SERVED_LOCK = threading.Lock()
SERVED_CACHE_SIZE = 4096


def served_out(session: Session, row: Decision) -> DecisionOut:
    """`to_out` for a decision served again and again (the loop's live answer): the shape is kept per
    (id, updated_at, status), and every change to a decision — a status move, a note, an outcome —
    moves `updated_at`, so nothing stale is served."""
    key = (row.id, row.updated_at, row.status)
    with _SERVED_LOCK:
        hit = _SERVED.get(key)
        if hit is not None:
            _SERVED.move_to_end(key)
            return hit
    out = to_out(session, row)
    with _SERVED_LOCK:
        _SERVED[key] = out
        while len(_SERVED) > SERVED_CACHE_SIZE:
            _SERVED.popitem(last=False)
    return out


def to_out(session: Session, row: Decision, with_history: bool = True) -> DecisionOut:
    return _outs(session, [row], with_history)[0]


def _outs(session: Session, rows: list[Decision], with_history: bool) -> list[DecisionOut]:
    ids = [r.id for r in rows]
    clusters = repo.cluster_names(session, [r.cluster_id for r in rows])
    history = repo.history_of(session, ids) if with_history else {}
    outcomes = repo.outcomes_of(session, ids)
    attempts = loop_repo.attempts_of(session, ids) if with_history else {}
    outs = [
        _out(
            r,
            clusters.get(r.cluster_id) if r.cluster_id else None,
            [
                DecisionEventOut(
                    ts=e.ts, actor=e.actor, from_status=e.from_status, to_status=e.to_status, note=e.note
                )
                for e in history.get(r.id, [])
            ],
            outcome_out(outcomes[r.id]) if r.id in outcomes else None,
        )
        for r in rows
    ]
    for out in outs:
        out.actuations = [
            ActuationOut.model_validate(a, from_attributes=True) for a in attempts.get(out.id, [])
        ]
    return outs


def _out(
    r: Decision, cluster: str | None, history: list[DecisionEventOut], outcome: OutcomeOut | None
) -> DecisionOut:
    return DecisionOut(
        id=r.id,
        kind=r.kind,
        cluster=cluster,
        target_kind=r.target_kind,
        target_name=r.target_name,
        action=r.action,
        params=r.params,
        status=r.status,  # type: ignore[arg-type]
        mode=r.mode,
        policy=r.policy,
        explanation=r.explanation,
        actor=r.actor,
        created_at=r.created_at,
        updated_at=r.updated_at,
        expires_at=r.expires_at,
        applied_at=r.applied_at,
        history=history,
        outcome=outcome,
    )


def get(session: Session, decision_id: int) -> DecisionOut:
    row = repo.get(session, decision_id)
    if row is None:
        raise NotFound(f"decision {decision_id} does not exist; list decisions with GET /v1/decisions")
    return to_out(session, row)


def audit_log(session: Session, f: repo.DecisionFilter, limit: int, offset: int) -> DecisionPage:
    rows, total = repo.list_decisions(session, f, limit, offset)
    return DecisionPage(items=_outs(session, rows, True), total=total, limit=limit, offset=offset)


def expire_stale(session: Session) -> int:
    """Background job: mark proposed decisions whose window passed as expired."""
    rows = repo.expire_due(session, now())
    for row in rows:
        move_status(session, row, "expired", POLICY_ACTOR, "its window passed before it was applied")
    return len(rows)
