"""Telemetry use cases: ingest a batch whole-or-nothing and idempotently; list and downsample series."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from service.config import Settings
from service.errors import InvalidInput, NotFound
from service.models.base import from_epoch_us
from service.ops.metrics import DUPLICATE_SAMPLES, INGEST_PHASE, INGESTED_SAMPLES
from service.telemetry import repository
from service.telemetry.downsample import Buckets, bucketize, nice_step
from service.telemetry.schemas import IngestResult, SamplesOut
from service.telemetry.validation import ParsedBatch, Problems, parse_batch

MAX_POINTS_LIMIT = 20_000


@contextmanager
def timed(phase: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        INGEST_PHASE.labels(phase).observe(time.perf_counter() - started)


def ingest(session: Session, batch: ParsedBatch) -> IngestResult:
    """Store a validated batch in the caller's transaction; resent samples are counted as duplicates."""
    specs = [(item.key, item.unit, item.labels) for item in batch.series]
    with timed("resolve_series"):
        known = repository.resolve_series(session, specs)
    problems = Problems()
    for item in batch.series:
        if known[item.key].unit != item.unit:
            stored = known[item.key].unit
            problems.add(item.index, None, "unit", f"is {item.unit!r} but the stored series uses {stored!r}",
                         item.key.describe())  # fmt: skip
    problems.raise_if_any()
    ids = np.array([known[s.key].id for s in batch.series], dtype=np.int64)[batch.owner]
    with timed("insert"):
        accepted = repository.insert_samples(session, ids, batch.ts_us, batch.values)
    total = batch.sample_count
    return IngestResult(
        series=len(batch.series),
        series_created=sum(1 for s in batch.series if known[s.key].created),
        samples=total,
        accepted=accepted,
        duplicates=total - accepted,
    )


def ingest_document(session: Session, payload: Any, settings: Settings) -> IngestResult:
    """Validate a decoded batch (the wire format as Python objects) and store it."""
    with timed("validate"):
        batch = parse_batch(
            payload, max_samples=settings.max_batch_samples, max_future_seconds=settings.max_future_seconds
        )
    return ingest(session, batch)


def record_ingest_metrics(result: IngestResult) -> None:
    """Count only after the commit succeeded, so the metrics never include rolled-back samples."""
    INGESTED_SAMPLES.inc(result.accepted)
    DUPLICATE_SAMPLES.inc(result.duplicates)


@dataclass
class SampleWindow:
    start: datetime | None
    end: datetime | None
    step_seconds: float | None
    max_points: int


def downsampled_samples(session: Session, series_id: int, window: SampleWindow) -> SamplesOut:
    """Samples of one series in [start, end): raw when few enough, else per-step mean / max / p95."""
    if repository.get_series(session, series_id) is None:
        raise NotFound(f"series {series_id} does not exist; list series with GET /v1/series")
    if not 1 <= window.max_points <= MAX_POINTS_LIMIT:
        raise InvalidInput(f"max_points must be between 1 and {MAX_POINTS_LIMIT}")
    _count, first, last = repository.series_stats(session, series_id)
    start = window.start or first or datetime.now(UTC)
    end = window.end or ((last + timedelta(microseconds=1)) if last else start + timedelta(seconds=1))
    if end <= start:
        raise InvalidInput(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    span = (end - start).total_seconds()
    step = _explicit_step(window.step_seconds)
    if step is None:
        if repository.count_samples(session, series_id, start, end) <= window.max_points:
            ts_us, values = repository.raw_samples(session, series_id, start, end)
            ones = np.ones(len(values), dtype=np.int64)
            return _answer(series_id, start, end, None, Buckets(ts_us / 1e6, values, values, values, ones))
        step = nice_step(span, window.max_points)
    if (end - start).total_seconds() / step > MAX_POINTS_LIMIT:
        raise InvalidInput(
            f"step {step}s gives more than {MAX_POINTS_LIMIT} points over this range; use a larger step"
        )
    if session.get_bind().dialect.name == "postgresql":
        rows = repository.bucketed_samples_postgres(session, series_id, start, end, step)
        table = np.array([tuple(row) for row in rows], dtype=np.float64).reshape(-1, 5)
        buckets = Buckets(table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4].astype(np.int64))
    else:
        ts_us, values = repository.raw_samples(session, series_id, start, end)
        buckets = bucketize(ts_us, values, step)
    return _answer(series_id, start, end, step, buckets)


def _explicit_step(step_seconds: float | None) -> int | None:
    if step_seconds is None:
        return None
    if step_seconds < 1 or step_seconds != int(step_seconds):
        raise InvalidInput("step must be a whole number of seconds, at least 1s")
    return int(step_seconds)


def _answer(series_id: int, start: datetime, end: datetime, step: int | None, buckets: Buckets) -> SamplesOut:
    stamps = [from_epoch_us(round(s * 1e6)) for s in np.asarray(buckets.start_seconds, dtype=np.float64)]
    return SamplesOut(
        series_id=series_id,
        start=start,
        end=end,
        step_seconds=step,
        timestamps=stamps,
        mean=buckets.mean.tolist(),
        max=buckets.max.tolist(),
        p95=buckets.p95.tolist(),
        count=buckets.count.tolist(),
    )
