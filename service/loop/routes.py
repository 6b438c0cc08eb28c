"""HTTP routes of the control loop: status and targets (read), per-target settings and the kill
switches (admin), one pass on demand (operate)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from service.auth.schemas import Principal
from service.deps import Database, SessionDep, SettingsDep, get_database, require
from service.loop import service
from service.loop.jobs import run_once
from service.loop.schemas import Freeze, LoopStatus, TargetConfig, TargetKind, TargetOut
from service.route_names import PathName

router = APIRouter(prefix="/v1/loop", tags=["control loop"])
Read = Annotated[Principal, Depends(require("read"))]
Operate = Annotated[Principal, Depends(require("operate"))]
Admin = Annotated[Principal, Depends(require("admin"))]


@router.get("", response_model=LoopStatus, summary="Whether the loop runs and acts, and how its targets fare")
def get_status(_: Read, session: SessionDep, settings: SettingsDep) -> LoopStatus:
    return service.status(session, settings)


@router.get("/targets", response_model=list[TargetOut], summary="Every target the loop decides for")
def get_targets(
    _: Read,
    session: SessionDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[TargetOut]:
    return service.list_targets(session, settings, limit, offset)


@router.put(
    "/targets/{kind}/{name:path}",
    response_model=TargetOut,
    summary="A target's cadence, actuator and kill switch (admin)",
)
def put_target(
    principal: Admin,
    session: SessionDep,
    settings: SettingsDep,
    kind: TargetKind,
    name: PathName,
    body: TargetConfig,
) -> TargetOut:
    return service.configure_target(session, settings, kind, name, body, principal.actor)


@router.post("/freeze", response_model=LoopStatus, summary="Kill switch: stop all actuation (admin)")
def freeze(
    principal: Admin, session: SessionDep, settings: SettingsDep, body: Freeze | None = None
) -> LoopStatus:
    return service.set_fleet_freeze(session, settings, True, body.reason if body else None, principal.actor)


@router.post("/unfreeze", response_model=LoopStatus, summary="Lift the fleet-wide kill switch (admin)")
def unfreeze(principal: Admin, session: SessionDep, settings: SettingsDep) -> LoopStatus:
    return service.set_fleet_freeze(session, settings, False, None, principal.actor)


@router.post("/run", summary="Run one pass of the loop now, over the targets that are due (operate)")
def run_now(_: Operate, database: Annotated[Database, Depends(get_database)]) -> dict[str, Any]:
    return run_once(database)
