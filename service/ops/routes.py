"""Operational endpoints: liveness, readiness (database reachable, schema at head), Prometheus metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import exc, text

from service import migrate
from service.db import Database
from service.deps import get_database
from service.ops.metrics import exposition_registry

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to serve: database reachable and migrations at head")
def readyz(database: Annotated[Database, Depends(get_database)]) -> JSONResponse:
    checks: dict[str, Any] = {"database": "unreachable", "migrations": "unknown"}
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        current, head = migrate.current_revision(database.engine), migrate.head_revision()
        checks["migrations"] = (
            "ok" if current == head else f"at {current}, head is {head}: run `foresight db upgrade`"
        )
    except exc.SQLAlchemyError as error:
        checks["error"] = type(error.orig if isinstance(error, exc.DBAPIError) else error).__name__
    ready = checks["database"] == "ok" and checks["migrations"] == "ok"
    headers = {} if ready else {"Retry-After": str(database.settings.retry_after_seconds)}
    return JSONResponse(
        {"ready": ready, "checks": checks}, status_code=200 if ready else 503, headers=headers
    )


@router.get("/metrics", summary="Prometheus exposition format", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(exposition_registry()), media_type=CONTENT_TYPE_LATEST)
