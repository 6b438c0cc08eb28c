"""Stored telemetry as a replay trace: a workload's load series (or any series by id) written as the
`long` trace format, with the replay settings the workload's own configuration implies (its replica
capacity, SLO and cost), so "what would Foresight have saved?" is asked of the workload as it runs."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from service.errors import InvalidInput, NotFound
from service.inventory import service as inventory
from service.readings import find_series
from service.replays.schemas import StoredSource
from service.telemetry import repository as telemetry

MAX_SAMPLES = 50_000
"""The newest samples a stored source replays at most (about 6 months of 5-minute samples)."""
MIN_SAMPLES = 50
DEFAULT_LOAD_METRIC = "requests_per_second"


@dataclass(frozen=True)
class SourceTrace:
    name: str
    csv: str
    defaults: dict[str, Any]
    """Replay settings from the workload (the request's config overrides them)."""
    describe: dict[str, Any]


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, details=[{"loc": ["body", "source"], "msg": message}])


def trace_of(session: Session, source: StoredSource) -> SourceTrace:
    """The stored series of `source` as a long trace (CSV text) and the settings it implies."""
    defaults: dict[str, Any] = {}
    if source.workload is not None:
        workload = inventory.get_workload(session, source.workload, source.cluster)
        metric = source.metric or workload.capacity_metric or DEFAULT_LOAD_METRIC
        series = find_series(session, workload.cluster, "workload", workload.name, metric)
        if series is None:
            raise NotFound(f"workload {workload.name!r} has no {metric!r} series to replay; ingest it first")
        name, series_id = workload.name, series.id
        defaults = _workload_defaults(workload)
    else:
        assert source.series is not None
        found = telemetry.get_series(session, source.series)
        if found is None:
            raise NotFound(f"series {source.series} does not exist; list series with GET /v1/series")
        name, series_id = f"series-{source.series}", source.series
    ts_us, values = telemetry.latest_samples(session, series_id, MAX_SAMPLES)
    if source.hours is not None and len(ts_us):
        keep = ts_us >= ts_us[-1] - int(source.hours * 3600e6)
        ts_us, values = ts_us[keep], values[keep]
    if len(ts_us) < MIN_SAMPLES:
        raise _bad(f"{name} has {len(ts_us)} samples in the window; a replay needs at least {MIN_SAMPLES}")
    step = float(np.median(np.diff(ts_us)) / 1e6)
    defaults.setdefault("step_seconds", step)
    defaults.setdefault("decision_interval_seconds", max(step, 60.0))
    out = io.StringIO()
    out.write("series,timestamp,value\n")
    for t, v in zip(ts_us.tolist(), values.tolist(), strict=True):
        stamp = datetime.fromtimestamp(t / 1e6, UTC).isoformat()
        out.write(f"{name},{stamp},{max(float(v), 0.0)!r}\n")
    describe = {"series_id": series_id, "samples": len(ts_us), "step_seconds": step,
                "first": datetime.fromtimestamp(ts_us[0] / 1e6, UTC).isoformat(),
                "last": datetime.fromtimestamp(ts_us[-1] / 1e6, UTC).isoformat()}  # fmt: skip
    return SourceTrace(f"{name}.csv", out.getvalue(), defaults, describe)


def _workload_defaults(workload: Any) -> dict[str, Any]:
    scaling: dict[str, Any] = {"min_replicas": workload.min_replicas}
    if workload.max_replicas is not None:
        scaling["max_replicas"] = workload.max_replicas
    for key in ("target_utilisation", "epsilon", "cost_per_replica", "sla_penalty"):
        if key in (workload.slo or {}):
            scaling[key] = workload.slo[key]
    config: dict[str, Any] = {"scaling": scaling}
    if workload.replica_capacity is not None:
        config["serving"] = {"replica_capacity": workload.replica_capacity}
    return config


def merged(defaults: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """`config` over `defaults`, section by section (the request always wins)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in defaults.items()}
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out
