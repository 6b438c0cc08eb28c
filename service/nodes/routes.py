"""HTTP routes of nodes: unhealthy-node events (single and bulk history import), mitigation
recommendations (operate) and training the causal mitigation model (operate)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from service.auth.schemas import Principal
from service.decisions.schemas import DecisionOut
from service.deps import SessionDep, SettingsDep, require
from service.forecasts.schemas import ModelOut
from service.names import PathName, QueryName
from service.nodes import service
from service.nodes.schemas import (
    BulkNodeEvents,
    BulkResult,
    MitigationRequest,
    MitigationTrainRequest,
    NodeEventIn,
    NodeEventOut,
)

router = APIRouter(prefix="/v1", tags=["nodes"])
Ingest = Annotated[Principal, Depends(require("ingest"))]
Read = Annotated[Principal, Depends(require("read"))]
Operate = Annotated[Principal, Depends(require("operate"))]
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
