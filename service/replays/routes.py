"""HTTP routes of replays: start one (operate), watch it and read its results (read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from service.auth.schemas import Principal
from service.deps import SessionDep, require
from service.replays import service
from service.replays.schemas import BundledTrace, ReplayOut, ReplayPage, ReplayRequest

router = APIRouter(prefix="/v1", tags=["replays"])
Read = Annotated[Principal, Depends(require("read"))]
Operate = Annotated[Principal, Depends(require("operate"))]
RunId = Annotated[int, Path(ge=1, le=2**62)]


@router.post(
    "/replays",
    response_model=ReplayOut,
    status_code=202,
    summary="Start a replay (one policy), a comparison (several) or a savings run (with HPA's target sweep) "
    "on a bundled trace, an uploaded one or stored telemetry ({source: {workload}} or {source: {series}})",
)
def start(
    principal: Operate, session: SessionDep, request: Request, body: ReplayRequest, tasks: BackgroundTasks
) -> ReplayOut:
    answer, job = service.start(session, request.app.state.database, body, principal.actor)
    tasks.add_task(job)  # after the response, so after the row is committed
    return answer


@router.get("/replays", response_model=ReplayPage, summary="Replay runs, newest first")
def list_replays(
    _: Read,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ReplayPage:
    return service.page(session, limit, offset)


@router.get("/replays/traces", response_model=list[BundledTrace], summary="Traces a replay can name")
def traces(_: Read) -> list[BundledTrace]:
    return service.traces()


@router.get("/replays/{run_id}", response_model=ReplayOut, summary="A replay's status, progress and summary")
def get_replay(_: Read, session: SessionDep, run_id: RunId) -> ReplayOut:
    return service.get(session, run_id)


@router.get(
    "/replays/{run_id}/report", response_class=HTMLResponse, summary="The replay's report (offline HTML)"
)
def report(_: Read, session: SessionDep, run_id: RunId) -> HTMLResponse:
    return HTMLResponse(service.artifact(session, run_id, "report"))


@router.get(
    "/replays/{run_id}/timeline",
    summary="A run's per-step timeline (CSV)",
    responses={200: {"content": {"text/csv": {}}}},
)
def timeline(_: Read, session: SessionDep, run_id: RunId) -> Response:
    return Response(service.artifact(session, run_id, "timeline"), media_type="text/csv")


@router.get(
    "/replays/{run_id}/trace",
    summary="The trace a replay ran on (CSV): `foresight replay compare --trace` it to check the numbers",
    responses={200: {"content": {"text/csv": {}}}},
)
def trace(_: Read, session: SessionDep, run_id: RunId) -> Response:
    return Response(service.trace_csv(session, run_id), media_type="text/csv")
