"""All SQL of telemetry: get-or-create of clusters, entities and series; the sample insert fast paths;
the queries behind listing and downsampling. Callers own the transaction (nothing here commits)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import Select, bindparam, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import Cluster, Node, PowerDomain, Sample, Series, Workload
from service.models.base import from_epoch_us, to_epoch_us
from service.telemetry.pgcopy import encode_samples
from service.telemetry.validation import SeriesKey

ENTITY_TABLES = {"node": Node, "workload": Workload, "power_domain": PowerDomain}
LOOKUP_CHUNK = 400


@dataclass(frozen=True)
class KnownSeries:
    id: int
    unit: str
    created: bool


def _insert_ignore(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING for either backend (concurrent first sightings are safe)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(model).on_conflict_do_nothing(), rows)


def cluster_ids_of(session: Session, names: Iterable[str], *, create: bool) -> dict[str, int]:
    """Ids of the named clusters; with `create`, missing ones are created first."""
    wanted = sorted(set(names))
    if create:
        _insert_ignore(session, Cluster, [{"name": name} for name in wanted])
    rows = session.execute(select(Cluster.name, Cluster.id).where(Cluster.name.in_(wanted)))
    return {name: cluster_id for name, cluster_id in rows}


def ensure_entities(session: Session, keys: Iterable[SeriesKey], cluster_ids: dict[str, int]) -> None:
    """Create nodes / workloads / power domains the first time telemetry names them."""
    by_kind: dict[str, set[tuple[int, str]]] = {}
    for key in keys:
        if key.kind in ENTITY_TABLES:
            by_kind.setdefault(key.kind, set()).add((cluster_ids[key.cluster], key.name))
    for kind, pairs in sorted(by_kind.items()):
        rows = [{"cluster_id": cluster_id, "name": name} for cluster_id, name in sorted(pairs)]
        _insert_ignore(session, ENTITY_TABLES[kind], rows)


def _lookup_series(
    session: Session, keys: Sequence[SeriesKey], cluster_ids: dict[str, int]
) -> dict[SeriesKey, tuple[int, str]]:
    """Stored (id, unit) of the keys. Filters on the distinct entity names and metrics (about one bound
    parameter per series instead of five: binding dominated the cost) and matches keys exactly here."""
    wanted = set(keys)
    found: dict[SeriesKey, tuple[int, str]] = {}
    names = {cluster_id: name for name, cluster_id in cluster_ids.items()}
    entity_names = sorted({key.name for key in keys})
    metrics = sorted({key.metric for key in keys})
    for start in range(0, len(entity_names), LOOKUP_CHUNK):
        query = select(
            Series.id, Series.unit, Series.cluster_id, Series.entity_kind, Series.entity_name, Series.metric,
            Series.labels_key,
        ).where(
            Series.cluster_id.in_(sorted({cluster_ids[key.cluster] for key in keys})),
            Series.entity_kind.in_(sorted({key.kind for key in keys})),
            Series.entity_name.in_(entity_names[start : start + LOOKUP_CHUNK]),
            Series.metric.in_(metrics),
        )  # fmt: skip
        for series_id, unit, cluster_id, kind, name, metric, labels_key in session.execute(query):
            key = SeriesKey(names[cluster_id], kind, name, metric, labels_key)
            if key in wanted:
                found[key] = (series_id, unit)
    return found


def resolve_series(
    session: Session, specs: Sequence[tuple[SeriesKey, str, dict[str, str]]]
) -> dict[SeriesKey, KnownSeries]:
    """Ids of the batch's series. The usual case (all known) costs two SELECTs; missing clusters,
    entities and series are created sorted, so concurrent writers never deadlock."""
    keys = sorted(spec[0] for spec in specs)
    cluster_ids = cluster_ids_of(session, (key.cluster for key in keys), create=False)
    known = {key for key in keys if key.cluster in cluster_ids}
    existing = _lookup_series(session, [key for key in keys if key in known], cluster_ids)
    missing = sorted((spec for spec in specs if spec[0] not in existing), key=lambda spec: spec[0])
    result = {key: KnownSeries(sid, unit, False) for key, (sid, unit) in existing.items()}
    if not missing:
        return result
    cluster_ids = cluster_ids_of(session, (spec[0].cluster for spec in missing), create=True)
    ensure_entities(session, [spec[0] for spec in missing], cluster_ids)
    rows = [
        {
            "cluster_id": cluster_ids[key.cluster], "entity_kind": key.kind, "entity_name": key.name,
            "metric": key.metric, "unit": unit, "labels": labels, "labels_key": key.labels_key,
        }
        for key, unit, labels in missing
    ]  # fmt: skip
    _insert_ignore(session, Series, rows)
    created = _lookup_series(session, [spec[0] for spec in missing], cluster_ids)
    result.update({key: KnownSeries(sid, unit, True) for key, (sid, unit) in created.items()})
    return result


def insert_samples(session: Session, series_id: np.ndarray, ts_us: np.ndarray, values: np.ndarray) -> int:
    """Insert samples, skipping ones already stored; returns how many were new."""
    if len(series_id) == 0:
        return 0
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _insert_samples_postgres(connection, series_id, ts_us, values)
    rows = list(zip(series_id.tolist(), ts_us.tolist(), values.tolist(), strict=True))
    result = connection.exec_driver_sql(
        "INSERT OR IGNORE INTO samples (series_id, ts, value) VALUES (?, ?, ?)", rows
    )
    return int(result.rowcount)


def _insert_samples_postgres(
    connection: Any, series_id: np.ndarray, ts_us: np.ndarray, values: np.ndarray
) -> int:
    """Binary COPY of the rows, sorted by key so concurrent writers lock in one order.

    Optimistic: new samples (the usual case) are COPYed straight into `samples` under a savepoint. Only
    when that hits a stored key (a retried or overlapping batch) is the savepoint rolled back and the
    rows go through a staging table and one INSERT … ON CONFLICT DO NOTHING, which skips duplicates.
    """
    order = np.lexsort((ts_us, series_id))
    payload = encode_samples(series_id[order], ts_us[order], values[order])
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:
        cursor.execute("SAVEPOINT ingest_direct")
        try:
            with cursor.copy("COPY samples (series_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(payload)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT ingest_direct")
        else:
            cursor.execute("RELEASE SAVEPOINT ingest_direct")
            return len(order)
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS ingest_staging "
            "(series_id bigint, ts timestamptz, value float8) ON COMMIT DELETE ROWS"
        )
        with cursor.copy("COPY ingest_staging (series_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(payload)
        cursor.execute(
            "INSERT INTO samples (series_id, ts, value) "
            "SELECT series_id, ts, value FROM ingest_staging ORDER BY series_id, ts "
            "ON CONFLICT DO NOTHING"
        )
        inserted = int(cursor.rowcount)
        # emptied now, not only at commit: one transaction may ingest several batches (CLI import)
        cursor.execute("TRUNCATE ingest_staging")
    return inserted


# --- queries -------------------------------------------------------------------------------------


def series_query(
    *,
    cluster: str | None = None,
    entity_kind: str | None = None,
    entity_id: str | None = None,
    metric: str | None = None,
    labels: dict[str, str] | None = None,
) -> Select[Series, str]:
    query = select(Series, Cluster.name).join(Cluster, Cluster.id == Series.cluster_id)
    if cluster is not None:
        query = query.where(Cluster.name == cluster)
    if entity_kind is not None:
        query = query.where(Series.entity_kind == entity_kind)
    if entity_id is not None:
        query = query.where(Series.entity_name == entity_id)
    if metric is not None:
        query = query.where(Series.metric == metric)
    for label, value in (labels or {}).items():
        fragment = _escape_like(f'"{label}":{json.dumps(value)}')
        query = query.where(Series.labels_key.like(f"%{fragment}%", escape="\\"))
    return query


def list_series(
    session: Session, query: Select[Series, str], limit: int, offset: int
) -> tuple[list[Any], int]:
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Series.id).limit(limit).offset(offset)).all()
    return list(rows), int(total)


def get_series(session: Session, series_id: int) -> tuple[Series, str] | None:
    row = session.execute(
        select(Series, Cluster.name)
        .join(Cluster, Cluster.id == Series.cluster_id)
        .where(Series.id == series_id)
    ).first()
    return (row[0], row[1]) if row else None


def series_stats(session: Session, series_id: int) -> tuple[int, datetime | None, datetime | None]:
    count, first, last = session.execute(
        select(func.count(), func.min(Sample.ts), func.max(Sample.ts)).where(Sample.series_id == series_id)
    ).one()
    return int(count), first, last


def list_entities(
    session: Session, *, cluster: str | None, kind: str | None, limit: int, offset: int
) -> tuple[list[Any], int]:
    query = (
        select(Cluster.name, Series.entity_kind, Series.entity_name, func.count(Series.id).label("series"))
        .join(Cluster, Cluster.id == Series.cluster_id)
        .group_by(Cluster.name, Series.entity_kind, Series.entity_name)
    )
    if cluster is not None:
        query = query.where(Cluster.name == cluster)
    if kind is not None:
        query = query.where(Series.entity_kind == kind)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(Cluster.name, Series.entity_kind, Series.entity_name).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total)


def count_samples(session: Session, series_id: int, start: datetime, end: datetime) -> int:
    query = select(func.count()).where(Sample.series_id == series_id, Sample.ts >= start, Sample.ts < end)
    return int(session.scalar(query) or 0)


def raw_samples(
    session: Session, series_id: int, start: datetime, end: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """Samples in [start, end) as (epoch microseconds, values), oldest first."""
    if session.get_bind().dialect.name == "sqlite":  # stored as epoch microseconds already
        result = session.execute(
            text(
                "SELECT ts, value FROM samples "
                "WHERE series_id = :sid AND ts >= :start AND ts < :end ORDER BY ts"
            ),
            {"sid": series_id, "start": to_epoch_us(start), "end": to_epoch_us(end)},
        ).all()
        return _column(result, 0, np.int64), _column(result, 1, np.float64)
    rows = session.execute(
        select(Sample.ts, Sample.value)
        .where(Sample.series_id == series_id, Sample.ts >= start, Sample.ts < end)
        .order_by(Sample.ts)
    ).all()
    ts = np.fromiter((to_epoch_us(row[0]) for row in rows), dtype=np.int64, count=len(rows))
    values = np.fromiter((row[1] for row in rows), dtype=np.float64, count=len(rows))
    return ts, values


def samples_of_series(
    session: Session, series_ids: Sequence[int], after_us: int | None = None, until_us: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(series id, epoch microseconds, value) of several series with after_us < ts <= until_us."""
    if not series_ids:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    postgres = session.get_bind().dialect.name == "postgresql"
    ts_sql = "(extract(epoch FROM ts) * 1000000)::bigint" if postgres else "ts"
    clauses = ["series_id IN :ids"]
    params: dict[str, Any] = {"ids": list(series_ids)}
    for name, value, op in (("after", after_us, ">"), ("until", until_us, "<=")):
        if value is not None:
            clauses.append(f"ts {op} :{name}")
            params[name] = from_epoch_us(value) if postgres else value
    statement = text(
        f"SELECT series_id, {ts_sql}, value FROM samples WHERE {' AND '.join(clauses)} ORDER BY series_id, ts"
    ).bindparams(bindparam("ids", expanding=True))
    rows = session.execute(statement, params).all()
    return _column(rows, 0, np.int64), _column(rows, 1, np.int64), _column(rows, 2, np.float64)


def _column(rows: Sequence[Any], index: int, dtype: type[np.generic]) -> np.ndarray:
    """One column of result rows as an array. Never `np.array(rows)`: numpy probes every SQLAlchemy Row
    for the array protocols, and each probe raises and formats an AttributeError (~50x slower, and what
    stalled remote-write batches whose counter look-back read many rows)."""
    return np.fromiter((row[index] for row in rows), dtype=dtype, count=len(rows))


def bucketed_samples_postgres(
    session: Session, series_id: int, start: datetime, end: datetime, step_seconds: int
) -> list[Any]:
    """Per-step mean / max / p95 / count computed by Postgres (rows: bucket start epoch s, …)."""
    return list(
        session.execute(
            text(
                "SELECT (floor(extract(epoch FROM ts) / :step) * :step)::bigint AS bucket, avg(value), "
                "max(value), percentile_cont(0.95) WITHIN GROUP (ORDER BY value), count(*) "
                "FROM samples WHERE series_id = :sid AND ts >= :start AND ts < :end "
                "GROUP BY bucket ORDER BY bucket"
            ),
            {"step": step_seconds, "sid": series_id, "start": start, "end": end},
        ).all()
    )


def _escape_like(fragment: str) -> str:
    return fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def latest_samples(session: Session, series_id: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The last `count` samples as (epoch microseconds, values), oldest first."""
    rows = session.execute(
        select(Sample.ts, Sample.value)
        .where(Sample.series_id == series_id)
        .order_by(Sample.ts.desc())
        .limit(count)
    ).all()
    ts = np.fromiter((to_epoch_us(row[0]) for row in reversed(rows)), dtype=np.int64, count=len(rows))
    values = np.fromiter((row[1] for row in reversed(rows)), dtype=np.float64, count=len(rows))
    return ts, values
