"""The use case shared by every receiver: map decoded series, optionally derive counter rates, and store
them through the telemetry ingest (whole batch or nothing, resent samples are duplicates)."""

from __future__ import annotations

from prometheus_client import Counter
from sqlalchemy.orm import Session

from service.config import Settings
from service.errors import PayloadTooLarge
from service.integrations.convert import RawBatch, add_rates, convert
from service.integrations.labels import load_mapping
from service.integrations.schemas import ReceiveResult
from service.ops.metrics import REGISTRY
from service.telemetry import service as telemetry

DROPPED_SAMPLES = Counter(
    "foresight_integration_dropped_samples_total",
    "Samples received from Prometheus / OTLP that cannot be stored, by source and reason.",
    ["source", "reason"],
    registry=REGISTRY,
)


def store(
    session: Session, raw: RawBatch, settings: Settings, *, source: str, rates: bool, limit: bool = True
) -> ReceiveResult:
    """Store `raw` in the caller's transaction (nothing is committed here)."""
    if limit and raw.sample_count > settings.max_batch_samples:
        raise PayloadTooLarge(
            f"the request has {raw.sample_count} samples, over the limit of {settings.max_batch_samples} "
            "(FORESIGHT_MAX_BATCH_SAMPLES); lower the sender's batch size (max_samples_per_send)"
        )
    with telemetry.timed("validate"):
        converted = convert(
            raw, load_mapping(settings.integration_mapping), max_future_seconds=settings.max_future_seconds
        )
    batch = add_rates(session, converted, every_counter=rates) if converted.batch.series else converted.batch
    dropped = dict(sorted(converted.dropped.items()))
    if not batch.series:
        return ReceiveResult(
            source=source, series=0, series_created=0, samples=0, accepted=0, duplicates=0, dropped=dropped
        )
    result = telemetry.ingest(session, batch)
    return ReceiveResult(source=source, dropped=dropped, **result.model_dump())


def record_metrics(result: ReceiveResult) -> None:
    """Count after the commit succeeded (like the JSON path)."""
    telemetry.record_ingest_metrics(result)
    for reason, count in result.dropped.items():
        DROPPED_SAMPLES.labels(result.source, reason).inc(count)
