"""HTTP routes of telemetry: ingest batches, list entities and series, read downsampled samples."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from service.auth.schemas import Principal
from service.db import on_commit
from service.deps import SessionDep, SettingsDep, require
from service.errors import ForesightError, InvalidInput, NotFound, PayloadTooLarge
from service.models import Series
from service.ops.metrics import REJECTED_BATCHES
from service.route_names import QueryName
from service.telemetry import repository
from service.telemetry import service as telemetry
from service.telemetry.schemas import (
    EntityKind,
    EntityOut,
    EntityPage,
    IngestResult,
    SamplesOut,
    SeriesDetail,
    SeriesOut,
    SeriesPage,
    TelemetryBatch,
)
from service.telemetry.validation import decode_json
from service.timeparse import parse_duration, parse_time

router = APIRouter(prefix="/v1", tags=["telemetry"])
Ingest = Annotated[Principal, Depends(require("ingest"))]
Read = Annotated[Principal, Depends(require("read"))]


async def read_body(request: Request, settings: SettingsDep) -> bytes:
    """The raw body, refused with 413 as soon as it exceeds the configured limit."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
        REJECTED_BATCHES.labels("too_large").inc()
        raise PayloadTooLarge(
            f"body of {declared} bytes exceeds the limit of {settings.max_body_bytes} bytes"
        )
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > settings.max_body_bytes:
            REJECTED_BATCHES.labels("too_large").inc()
            raise PayloadTooLarge(f"body exceeds the limit of {settings.max_body_bytes} bytes")
    return bytes(body)


@router.post(
    "/telemetry",
    response_model=IngestResult,
    summary="Ingest a batch of samples (whole or nothing; resent samples are duplicates, not errors)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TelemetryBatch"}}},
        }
    },
    responses={
        400: {"description": "Malformed JSON"},
        413: {"description": "Batch or body over the limit"},
        422: {"description": "Invalid content, naming series and sample index"},
        503: {"description": "Database unavailable; nothing written; retry after Retry-After"},
    },
)
def ingest_telemetry(
    _: Ingest,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[bytes, Depends(read_body)],
) -> IngestResult:
    """Runs in the thread pool: parsing a large batch never blocks the event loop."""
    try:
        with telemetry.timed("parse"):
            payload = decode_json(body)
        result = telemetry.ingest_document(session, payload, settings)
    except ForesightError as error:
        REJECTED_BATCHES.labels(error.code).inc()
        raise
    on_commit(session, partial(telemetry.record_ingest_metrics, result))
    return result


@router.get("/entities", response_model=EntityPage, summary="Entities that have telemetry")
def list_entities(
    _: Read,
    session: SessionDep,
    kind: EntityKind | None = None,
    cluster: QueryName = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> EntityPage:
    rows, total = repository.list_entities(session, cluster=cluster, kind=kind, limit=limit, offset=offset)
    items = [EntityOut(cluster=c, kind=k, id=n, series=count) for c, k, n, count in rows]
    return EntityPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/series", response_model=SeriesPage, summary="Series, filtered by entity, metric and labels")
def list_series(
    _: Read,
    session: SessionDep,
    cluster: QueryName = None,
    entity_kind: EntityKind | None = None,
    entity_id: QueryName = None,
    metric: QueryName = None,
    label: Annotated[list[str] | None, Query(description="name=value, repeatable")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SeriesPage:
    labels = {}
    for item in label or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInput(f"label={item!r} must look like name=value")
        labels[name] = value
    query = repository.series_query(
        cluster=cluster, entity_kind=entity_kind, entity_id=entity_id, metric=metric, labels=labels
    )
    rows, total = repository.list_series(session, query, limit, offset)
    return SeriesPage(items=[_series_out(s, c) for s, c in rows], total=total, limit=limit, offset=offset)


@router.get("/series/{series_id}", response_model=SeriesDetail, summary="One series with its sample range")
def get_series(_: Read, session: SessionDep, series_id: int) -> SeriesDetail:
    found = repository.get_series(session, series_id)
    if found is None:
        raise NotFound(f"series {series_id} does not exist; list series with GET /v1/series")
    count, first, last = repository.series_stats(session, series_id)
    return SeriesDetail(**_series_out(*found).model_dump(), samples=count, first=first, last=last)


@router.get(
    "/series/{series_id}/samples",
    response_model=SamplesOut,
    summary="Samples in [start, end), downsampled per step to mean / max / p95 when there are many",
)
def get_samples(
    _: Read,
    session: SessionDep,
    series_id: int,
    start: Annotated[
        str | None, Query(description="RFC 3339 or epoch seconds; default: first sample")
    ] = None,
    end: Annotated[
        str | None, Query(description="RFC 3339 or epoch seconds; default: after the last")
    ] = None,
    step: Annotated[
        str | None, Query(description="bucket size: 10s, 5m, 1h or seconds; default: auto")
    ] = None,
    max_points: Annotated[int, Query(ge=1, le=telemetry.MAX_POINTS_LIMIT)] = 1000,
) -> SamplesOut:
    window = telemetry.SampleWindow(
        start=parse_time(start, "start") if start else None,
        end=parse_time(end, "end") if end else None,
        step_seconds=parse_duration(step, "step") if step else None,
        max_points=max_points,
    )
    return telemetry.downsampled_samples(session, series_id, window)


def _series_out(series: Series, cluster: str) -> SeriesOut:
    return SeriesOut(
        id=series.id, cluster=cluster, entity_kind=series.entity_kind, entity_id=series.entity_name,
        metric=series.metric, unit=series.unit, labels=dict(series.labels), created_at=series.created_at,
    )  # fmt: skip


__all__ = ["TelemetryBatch", "router"]
