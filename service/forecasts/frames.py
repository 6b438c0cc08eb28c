"""Rows to frames: which stored series a forecaster sees, under which names, and their samples as the
long frame of docs/architecture.md §5. Several metrics of one entity share a `series_id` (the entity key),
so a global model can use them as covariates (HARMONY's hierarchy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy.orm import Session

from service.errors import InvalidInput
from service.models import Series
from service.telemetry import repository as telemetry

MAX_SERIES = 10_000


@dataclass(frozen=True)
class SeriesRef:
    id: int
    entity: str  # cluster/kind/name[labels]: the forecaster's series_id
    metric: str
    unit: str


@dataclass(frozen=True)
class Selection:
    """Which series to train on; empty fields match everything."""

    series_ids: tuple[int, ...] = ()
    cluster: str | None = None
    entity_kind: str | None = None
    entity_id: str | None = None
    metric: str | None = None


def select_series(session: Session, selection: Selection) -> list[SeriesRef]:
    query = telemetry.series_query(
        cluster=selection.cluster, entity_kind=selection.entity_kind, entity_id=selection.entity_id,
        metric=selection.metric,
    )  # fmt: skip
    if selection.series_ids:
        query = query.where(Series.id.in_(selection.series_ids))
    rows, total = telemetry.list_series(session, query, MAX_SERIES, 0)
    if total > MAX_SERIES:
        raise InvalidInput(f"{total} series match; train at most {MAX_SERIES} at once (narrow the selection)")
    missing = set(selection.series_ids) - {series.id for series, _ in rows}
    if missing:
        raise InvalidInput(f"series {sorted(missing)} do not exist; list series with GET /v1/series")
    return [
        SeriesRef(series.id, entity_key(cluster, series.entity_kind, series.entity_name, series.labels_key),
                  series.metric, series.unit)
        for series, cluster in rows
    ]  # fmt: skip


def entity_key(cluster: str, kind: str, name: str, labels_key: str) -> str:
    return f"{cluster}/{kind}/{name}" + ("" if labels_key == "{}" else labels_key)


def long_frame(
    session: Session, refs: Sequence[SeriesRef], after_us: int | None = None, until_us: int | None = None
) -> pd.DataFrame:
    """Samples of the series as `series_id, metric, ts, value` (ts aware UTC), oldest first."""
    ids, ts_us, values = telemetry.samples_of_series(session, [r.id for r in refs], after_us, until_us)
    by_id = {r.id: r for r in refs}
    return pd.DataFrame(
        {
            "series_id": [by_id[i].entity for i in ids.tolist()],
            "metric": [by_id[i].metric for i in ids.tolist()],
            "ts": pd.to_datetime(ts_us, unit="us", utc=True),
            "value": values,
        }
    )
