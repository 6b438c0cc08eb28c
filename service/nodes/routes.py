"""HTTP routes of nodes: unhealthy-node events (single and bulk history import), mitigation
recommendations (operate), training the mitigation model (operate) and its fallback setting — a declared
rule and the hard-fault overrides (read to see, admin to change, like other configuration)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from service.auth.schemas import Principal
from service.decisions.schemas import DecisionOut
from service.deps import SessionDep, SettingsDep, require
from service.forecasts.schemas import ModelOut
from service.nodes import service
from service.nodes.schemas import (
    BulkNodeEvents,
    BulkResult,
    MitigationRequest,
    MitigationRuleIn,
    MitigationRuleOut,
    MitigationTrainRequest,
    NodeEventIn,
    NodeEventOut,
)
from service.route_names import PathName, QueryName

router = APIRouter(prefix="/v1", tags=["nodes"])
Ingest = Annotated[Principal, Depends(require("ingest"))]
Read = Annotated[Principal, Depends(require("read"))]
Operate = Annotated[Principal, Depends(require("operate"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Name = PathName


@router.post(
    "/nodes/{name}/events",
    response_model=NodeEventOut,
    status_code=201,
    summary="Record an unhealthy-node event (a resend answers 200 with the same event)",
)
def post_event(
    _: Ingest, session: SessionDep, name: Name, body: NodeEventIn, response: Response
) -> NodeEventOut:
    out, created = service.record_event(session, name, body)
    if not created:
        response.status_code = 200
    return out


@router.post("/node-events", response_model=BulkResult, summary="Import event history: all or nothing")
def post_events(_: Ingest, session: SessionDep, body: BulkNodeEvents) -> BulkResult:
    return service.record_events(session, body)


@router.get(
    "/nodes/{name}/events", response_model=list[NodeEventOut], summary="A node's events, newest first"
)
def get_events(
    _: Read,
    session: SessionDep,
    name: Name,
    cluster: QueryName = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[NodeEventOut]:
    return service.list_events(session, name, cluster, limit, offset)


@router.post(
    "/recommendations/mitigation",
    response_model=DecisionOut,
    status_code=201,
    summary="Recommend what to do about an unhealthy node (recorded as a decision)",
)
def recommend(
    principal: Operate, session: SessionDep, settings: SettingsDep, body: MitigationRequest
) -> DecisionOut:
    return service.recommend(session, body, settings, principal.actor)


@router.post(
    "/models/mitigation/train",
    response_model=ModelOut,
    status_code=201,
    summary="Fit the causal mitigation model on events with known action and downtime",
)
def train(_: Operate, session: SessionDep, body: MitigationTrainRequest | None = None) -> ModelOut:
    return service.train(session, body or MitigationTrainRequest())


@router.get(
    "/models/mitigation/rule",
    response_model=MitigationRuleOut,
    summary="The mitigation fallback: a declared rule or the learned practice, and the hard-fault overrides",
)
def get_rule(_: Read, session: SessionDep) -> MitigationRuleOut:
    return service.get_rule(session)


@router.put(
    "/models/mitigation/rule",
    response_model=MitigationRuleOut,
    summary="Declare the fallback rule (thresholds over your signals -> action) and/or the overrides",
)
def put_rule(_: Admin, session: SessionDep, body: MitigationRuleIn) -> MitigationRuleOut:
    return service.set_rule(session, body)


@router.delete(
    "/models/mitigation/rule",
    response_model=MitigationRuleOut,
    summary="Back to the learned practice as the fallback and the built-in overrides",
)
def delete_rule(_: Admin, session: SessionDep) -> MitigationRuleOut:
    return service.set_rule(session, None)
