"""Readings: what policies, KEDA and the dashboard read from the database about a series — its recent
samples, a workload's queue backlog, and its forecast window as a `QuantileForecast`.

A missing or failing forecast is not an error here: the caller gets `None` and the reason, and the policy
falls back to its conservative baseline and says why (the API never answers 500 for a modelling problem).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import case, func
from sqlalchemy.orm import Session

from forecasting.types import ForecastingError
from policies.distribution import QuantileForecast
from policies.types import PolicyError
from service.errors import DatabaseUnavailable, ForesightError
from service.forecasts import repository as registry
from service.forecasts import service as forecasts
from service.models import Series
from service.telemetry import repository as telemetry
from service.telemetry.repository import series_query


@dataclass(frozen=True)
class Observed:
    values: tuple[float, ...]
    step_seconds: float
    last_ts: float | None


def find_series(session: Session, cluster: str, kind: str, entity: str, metric: str) -> Series | None:
    """The entity's series of `metric`: the workload total (no `pod` label, service/telemetry/rollup.py)
    before any one pod's series, then the fewest labels, then the oldest."""
    per_pod = case((Series.labels_key.like('%"pod":%'), 1), else_=0)
    query = series_query(cluster=cluster, entity_kind=kind, entity_id=entity, metric=metric)
    row = session.execute(query.order_by(per_pod, func.length(Series.labels_key), Series.id).limit(1)).first()
    return row[0] if row else None


def per_pod_values(
    session: Session, cluster: str, workload: str, metric: str, count: int = 2000
) -> tuple[float, ...] | None:
    """Every pod's recent samples of `metric`, pooled (what one replica uses, as VPA's histogram sees
    it), or None when the workload has no per-pod series (its usage is then reported per replica)."""
    query = series_query(cluster=cluster, entity_kind="workload", entity_id=workload, metric=metric)
    pods = [row[0].id for row in session.execute(query.where(Series.labels_key.like('%"pod":%')))]
    if not pods:
        return None
    per_pod = max(count // len(pods), 16)
    values: list[float] = []
    for series_id in pods[:200]:
        _, latest = telemetry.latest_samples(session, series_id, per_pod)
        values.extend(float(v) for v in latest)
    return tuple(values)


def observed(session: Session, series_id: int, count: int = 120) -> Observed:
    ts_us, values = telemetry.latest_samples(session, series_id, count)
    if len(ts_us) == 0:
        return Observed((), 60.0, None)
    step = float(np.median(np.diff(ts_us)) / 1e6) if len(ts_us) > 1 else 60.0
    return Observed(tuple(float(v) for v in values), step, float(ts_us[-1]) / 1e6)


REPLICAS_METRIC = "replicas"
"""A workload's replicas as the cluster reports them (kube-state-metrics `…_status_replicas`)."""


def current_replicas(
    session: Session, cluster: str, workload: str, max_age_seconds: float
) -> tuple[int, float] | None:
    """The workload's latest reported replica count and its time, when one is at most `max_age_seconds`
    old (older readings say nothing about now)."""
    series = find_series(session, cluster, "workload", workload, REPLICAS_METRIC)
    if series is None:
        return None
    latest = observed(session, series.id, count=1)
    if latest.last_ts is None or latest.last_ts < time.time() - max_age_seconds:
        return None
    return max(round(latest.values[-1]), 0), latest.last_ts


BACKLOG_METRIC = "queue_backlog"
"""A workload's work waiting, in its load metric's unit x seconds (queued requests for a requests/s load)."""


def backlog(session: Session, cluster: str, workload: str, load: Observed) -> tuple[float, str | None]:
    """The workload's latest `queue_backlog` sample when it is as recent as the load it goes with (within
    two load steps); 0 when there is no such series, and (0, why) when its sample is too old to use."""
    series = find_series(session, cluster, "workload", workload, BACKLOG_METRIC)
    if series is None:
        return 0.0, None
    latest = observed(session, series.id, count=1)
    if latest.last_ts is None:
        return 0.0, None
    if load.last_ts is not None and latest.last_ts < load.last_ts - 2 * load.step_seconds:
        age = load.last_ts - latest.last_ts
        return 0.0, f"{BACKLOG_METRIC} is {age:g} s older than the latest load sample; ignored"
    return max(float(latest.values[-1]), 0.0), None


def forecast_window(
    session: Session, series_id: int, horizon: int
) -> tuple[QuantileForecast | None, str | None]:
    """The series' forecast as a QuantileForecast, or (None, why not)."""
    return _distribution(session, series_id, horizon, f"series {series_id}")


def _distribution(
    session: Session, series_id: int, horizon: int, what: str
) -> tuple[QuantileForecast | None, str | None]:
    """The served forecast of the series as policies read it, or (None, why not); only an outage of the
    database is an error."""
    try:
        answer = forecasts.forecast(session, series_id, horizon)
    except DatabaseUnavailable:
        raise
    except (ForesightError, ForecastingError, PolicyError, ValueError, RuntimeError) as error:
        message = error.message if isinstance(error, ForesightError) else str(error)
        return None, f"no usable forecast for {what}: {message}"
    try:
        return answer.distribution(), None
    except PolicyError as error:
        return None, f"the forecast for {what} is unusable: {error}"


def degradation_window(
    session: Session, cluster: str, workload: str, metric: str, horizon: int
) -> tuple[QuantileForecast | None, str | None]:
    """The forecast slowdown of the workload (degradation d of its performance series `metric`, from the
    interference model serving it), or (None, why not)."""
    series = find_series(session, cluster, "workload", workload, metric)
    if series is None:
        return None, f"performance series {metric!r} of workload {workload!r} does not exist yet"
    serving = forecasts.model_name_serving(session, series.id)
    if serving != forecasts.INTERFERENCE:
        served_by = f"is served by {serving!r}, which forecasts its values" if serving else "has no model"
        loop = "" if serving else " (the control loop trains one once the series has enough history)"
        return None, (
            f"{metric!r} {served_by}; train an interference model on it: POST /v1/models/train "
            f'{{"model": "interference", "series_ids": [{series.id}]}}{loop}'
        )
    return _distribution(session, series.id, horizon, f"the interference of {metric!r}")


def interference_evidence(
    session: Session, cluster: str, workload: str, metric: str
) -> dict[str, Any] | None:
    """Which interference model forecast the workload's slowdown: its registry id and version, when it was
    trained, its healthy-baseline quantile model and, for `choice`, the member chosen for this series."""
    series = find_series(session, cluster, "workload", workload, metric)
    if series is None:
        return None
    found = registry.model_of_series(session, series.id)
    if found is None or found[0].name != forecasts.INTERFERENCE:
        return None
    row, entity = found
    config = (row.params or {}).get("config", {})
    description = (row.params or {}).get("description") or {}
    weights = (
        description.get("series_weights", {}).get(f"{entity}/{metric}") or description.get("weights") or {}
    )
    return {
        "series_id": series.id,
        "model_id": row.id,
        "model_version": row.version,
        "trained_at": row.created_at.isoformat() if row.created_at is not None else None,
        "base": config.get("base", "lightgbm_conformal"),
        "member": next(iter(weights), None),
        "target": "degradation d = 1 - performance / healthy baseline; capacity x (1 - d)",
    }
