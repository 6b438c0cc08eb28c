"""HTTP routes of the integrations: Prometheus remote-write and OTLP receivers (scope ingest), the
Prometheus exposition of forecasts and recommendations and the KEDA metrics-api endpoint (scope read)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.orm import Session

from service.auth.schemas import Principal
from service.config import Settings
from service.db import on_commit
from service.deps import SessionDep, SettingsDep, require
from service.errors import ForesightError
from service.integrations import exports, keda, otlp, receive, remote_write
from service.integrations.convert import RawBatch
from service.integrations.schemas import KedaOut, ReceiveResult
from service.ops.metrics import REJECTED_BATCHES
from service.route_names import PathName, QueryName
from service.telemetry.routes import read_body
from service.telemetry.service import timed

router = APIRouter(tags=["integrations"])
Ingest = Annotated[Principal, Depends(require("ingest"))]
Read = Annotated[Principal, Depends(require("read"))]
Body = Annotated[bytes, Depends(read_body)]
Counters = Annotated[
    Literal["raw", "rate"] | None,
    Query(description="rate: also store each counter as a per-second `name:rate` series (default: setting)"),
]
RECEIVER_ERRORS: dict[int | str, dict[str, str]] = {
    400: {"description": "Undecodable body (not retried by senders)"},
    413: {"description": "Body or batch over the limit"},
    415: {"description": "Wrong content type or encoding (remote-write 2.0 gets this and falls back)"},
    503: {"description": "Database unavailable; nothing written; retried after Retry-After"},
}


def _receive(
    session: Session,
    settings: Settings,
    source: str,
    counters: str | None,
    parse: Callable[[], RawBatch],
) -> ReceiveResult:
    """What both receivers do with a body: parse it, store it whole or not at all in the request's
    transaction, count a rejection by its code, and record the metrics once the commit is done."""
    rates = settings.counters_as_rates if counters is None else counters == "rate"
    try:
        with timed("parse"):
            raw = parse()
        result = receive.store(session, raw, settings, source=source, rates=rates)
    except ForesightError as error:
        REJECTED_BATCHES.labels(error.code).inc()
        raise
    on_commit(session, partial(receive.record_metrics, result))
    return result


@router.post(
    "/api/v1/write",
    response_model=ReceiveResult,
    summary="Prometheus remote-write 1.0 receiver (protobuf + snappy); whole request or nothing",
    responses=RECEIVER_ERRORS,
)
def prometheus_remote_write(
    _: Ingest,
    session: SessionDep,
    settings: SettingsDep,
    body: Body,
    counters: Counters = None,
    content_type: Annotated[str | None, Header()] = None,
    content_encoding: Annotated[str | None, Header()] = None,
) -> ReceiveResult:

    def parse() -> RawBatch:
        remote_write.check_headers(content_type, content_encoding)
        return remote_write.decode(body, settings.max_body_bytes)

    return _receive(session, settings, "remote_write", counters, parse)


@router.post(
    "/v1/metrics",
    summary="OTLP/HTTP metrics receiver (protobuf or JSON, gzip optional); whole request or nothing",
    response_class=Response,
    responses={
        200: {"description": "ExportMetricsServiceResponse; partial_success counts points left out"},
        **RECEIVER_ERRORS,
    },
)
def otlp_metrics(
    _: Ingest,
    session: SessionDep,
    settings: SettingsDep,
    body: Body,
    counters: Counters = None,
    content_type: Annotated[str | None, Header()] = None,
    content_encoding: Annotated[str | None, Header()] = None,
) -> Response:
    answer_in: list[str] = []  # the media type the request came in, to answer in the same

    def parse() -> RawBatch:
        raw, media = otlp.read(body, content_type, content_encoding, settings.max_body_bytes)
        answer_in.append(media)
        return raw

    result = _receive(session, settings, "otlp", counters, parse)
    rejected = sum(result.dropped.values())
    reasons = ", ".join(f"{reason}: {count}" for reason, count in result.dropped.items())
    message = f"points left out ({reasons})" if rejected else ""
    content, media_type = otlp.answer(answer_in[0], rejected, message)
    return Response(content, media_type=media_type)


@router.get(
    "/v1/exports/prometheus",
    summary="Forecast quantiles and current recommendations in the Prometheus exposition format",
    response_class=Response,
)
def prometheus_export(
    _: Read,
    session: SessionDep,
    settings: SettingsDep,
    horizon: Annotated[int | None, Query(ge=1, le=500, description="Steps (default setting)")] = None,
    cluster: QueryName = None,
    metric: QueryName = None,
) -> Response:
    text = exports.render(
        session,
        horizon=horizon or settings.export_horizon,
        max_series=settings.export_max_series,
        cluster=cluster,
        metric=metric,
    )
    return Response(text, media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/v1/keda/workloads/{name:path}",
    response_model=KedaOut,
    summary="KEDA metrics-api: a workload's recommended replicas and forecast load",
)
def keda_workload(
    _: Read,
    session: SessionDep,
    settings: SettingsDep,
    name: PathName,
    cluster: QueryName = None,
    include_proposed: bool = False,
    horizon: Annotated[int | None, Query(ge=1, le=500)] = None,
) -> KedaOut:
    return keda.recommendation(
        session, name, cluster, include_proposed=include_proposed, horizon=horizon or settings.export_horizon
    )
