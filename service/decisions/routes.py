"""HTTP routes of decisions: scaling / right-sizing recommendations, the audit log, approve / reject /
apply (scope `operate`, actor recorded) and outcomes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from service.auth.schemas import Principal
from service.decisions import repository as repo
from service.decisions import scaling
from service.decisions import service as decisions
from service.decisions.lifecycle import LOOP_ACTOR
from service.decisions.schemas import (
    DecisionOut,
    DecisionPage,
    DecisionStatus,
    OutcomeIn,
    OutcomeOut,
    RightsizingRequest,
    ScalingRequest,
    Verdict,
)
from service.deps import SessionDep, require
from service.route_names import QueryName
from service.timeparse import parse_time

router = APIRouter(prefix="/v1", tags=["decisions"])
Read = Annotated[Principal, Depends(require("read"))]
Operate = Annotated[Principal, Depends(require("operate"))]
DecisionId = Annotated[int, Path(ge=1, le=2**62)]


@router.post(
    "/recommendations/scaling",
    response_model=DecisionOut,
    status_code=201,
    summary="Recommend a workload's replicas (recorded as a decision)",
    description="201 with a new decision; 200 with the control loop's live decision when it is still the "
    "answer (same settings, made within the cadence, no load sample since).",
    responses={200: {"model": DecisionOut, "description": "The loop's live decision, served as is"}},
)
def recommend_scaling(
    principal: Operate, session: SessionDep, body: ScalingRequest, response: Response
) -> DecisionOut:
    out = scaling.recommend_scaling(session, body, principal.actor)
    if out.explanation.get("requested_by") == LOOP_ACTOR:
        response.status_code = 200
    return out


@router.post(
    "/recommendations/rightsizing",
    response_model=DecisionOut,
    status_code=201,
    summary="Recommend a workload's per-replica CPU / memory requests",
)
def recommend_rightsizing(principal: Operate, session: SessionDep, body: RightsizingRequest) -> DecisionOut:
    return scaling.recommend_rightsizing(session, body, principal.actor)


@router.get("/decisions", response_model=DecisionPage, summary="The audit log of decisions, newest first")
def list_decisions(
    _: Read,
    session: SessionDep,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[DecisionStatus | None, Query()] = None,
    target: QueryName = None,
    cluster: QueryName = None,
    policy: Annotated[str | None, Query(max_length=100)] = None,
    actor: QueryName = None,
    since: Annotated[str | None, Query(max_length=64, description="Epoch seconds or RFC 3339")] = None,
    until: Annotated[str | None, Query(max_length=64, description="Epoch seconds or RFC 3339")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DecisionPage:
    start = parse_time(since, "since") if since else None
    end = parse_time(until, "until") if until else None
    f = repo.DecisionFilter(kind, status, target, cluster, policy, actor, start, end)
    return decisions.audit_log(session, f, limit, offset)


@router.get("/decisions/{decision_id}", response_model=DecisionOut, summary="One decision with its history")
def get_decision(_: Read, session: SessionDep, decision_id: DecisionId) -> DecisionOut:
    return decisions.get(session, decision_id)


@router.post("/decisions/{decision_id}/approve", response_model=DecisionOut, summary="Approve (operate)")
def approve(
    principal: Operate,
    session: SessionDep,
    decision_id: DecisionId,
    body: Annotated[Verdict | None, Body()] = None,
) -> DecisionOut:
    return decisions.verdict(session, decision_id, "approved", principal.actor, body.note if body else None)


@router.post("/decisions/{decision_id}/reject", response_model=DecisionOut, summary="Reject (operate)")
def reject(
    principal: Operate,
    session: SessionDep,
    decision_id: DecisionId,
    body: Annotated[Verdict | None, Body()] = None,
) -> DecisionOut:
    return decisions.verdict(session, decision_id, "rejected", principal.actor, body.note if body else None)


@router.post(
    "/decisions/{decision_id}/apply",
    response_model=DecisionOut,
    summary="An actuator reports it carried the decision out (operate)",
)
def apply(
    principal: Operate,
    session: SessionDep,
    decision_id: DecisionId,
    body: Annotated[Verdict | None, Body()] = None,
) -> DecisionOut:
    return decisions.mark_applied(session, decision_id, principal.actor, body.note if body else None)


@router.post(
    "/decisions/{decision_id}/outcome",
    response_model=OutcomeOut,
    status_code=201,
    summary="Record what happened (once; an identical resend answers 200)",
    responses={200: {"model": OutcomeOut, "description": "The same outcome was already recorded"}},
)
def outcome(
    principal: Operate, session: SessionDep, decision_id: DecisionId, body: OutcomeIn, response: Response
) -> OutcomeOut:
    out, created = decisions.record_outcome(session, decision_id, body, principal.actor)
    if not created:
        response.status_code = 200
    return out
