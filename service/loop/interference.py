"""The control loop's interference models: trained and refreshed without a manual `POST /v1/models/train`.

Users send performance telemetry, not degradation ratios: a workload's per-replica throughput or latency
(the series its `performance_metric` names) and, on a node, co-located probe benchmarks (node series
whose metric starts with `probe_`, e.g. `probe_mlc_bandwidth_mib_s`, `probe_pgbench_latency_ms`). The
interference model (`forecasting.interference`, base `choice`) learns each series' healthy baseline and
forecasts its degradation `d = 1 - performance / baseline` (latencies inverted), so the series users
already export are enough.

* A workload: when no model serves its performance series, one is trained on it; when the interference
  model serving it is older than the retrain interval, it is trained again. A series another kind of
  model serves (a user forecasting its values) is left alone, and the decision's note says why.
* A node: one model per node over all of its probe series (each probe is a covariate of the others),
  trained and refreshed the same way, at most `NODES_PER_PASS` per pass.

A failed attempt (too little history yet) is retried after `RETRY_AFTER`. Both are recorded where the
operator looks: the workload target's `last_detail.interference`, and the pass counts.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service import readings
from service.config import Settings
from service.errors import ForesightError
from service.forecasts import frames
from service.forecasts import repository as registry
from service.forecasts import service as forecasts
from service.models import Cluster, Series, Workload
from service.models.base import utcnow

PROBE_PREFIX = "probe_"
"""Node series whose metric starts with this are co-located probe benchmarks (higher is better, or a
latency: any name containing 'latency' is inverted)."""
HORIZON = 12
LOOP_CONFIG: dict[str, Any] = {"base": "choice", "base_config": {"horizon": HORIZON}}
"""What the loop trains: per series, persistence, rolling median or LightGBM by validation CRPS (the
choice measured in docs/interference.md)."""
RETRY_AFTER = timedelta(minutes=15)
NODES_PER_PASS = 4
_failed: dict[tuple[int, ...], float] = {}
"""Series sets whose last training failed, and when (this process; a retry is harmless)."""


def ensure_workload_model(
    session: Session, settings: Settings, workload: Workload, cluster: str
) -> str | None:
    """Train or refresh the interference model of the workload's performance series; what was done, or
    None when there was nothing to do."""
    if not workload.performance_metric:
        return None
    series = readings.find_series(session, cluster, "workload", workload.name, workload.performance_metric)
    if series is None:
        return f"performance series {workload.performance_metric!r} has no samples yet"
    return _ensure(session, settings, [series.id], f"workload {workload.name!r}")


def ensure_node_models(session: Session, settings: Settings) -> dict[str, int]:
    """Train or refresh the interference model of every node that sends probe series (a few per pass)."""
    rows = session.execute(
        select(Series.id, Series.entity_name, Cluster.name)
        .join(Cluster, Cluster.id == Series.cluster_id)
        .where(Series.entity_kind == "node", Series.metric.like(f"{PROBE_PREFIX}%"))
        .order_by(Series.id)
    ).all()
    by_node: dict[tuple[str, str], list[int]] = {}
    for series_id, node, cluster in rows:
        by_node.setdefault((cluster, node), []).append(int(series_id))
    counts = {"trained": 0, "failed": 0}
    for (cluster, node), ids in by_node.items():
        if counts["trained"] + counts["failed"] >= NODES_PER_PASS:
            break
        done = _ensure(session, settings, ids, f"node {cluster}/{node}")
        if done is not None and done.startswith("trained"):
            counts["trained"] += 1
        elif done is not None and done.startswith("could not"):
            counts["failed"] += 1
    return counts


def _ensure(session: Session, settings: Settings, series_ids: list[int], what: str) -> str | None:
    reason = _why_train(session, settings, series_ids)
    if reason is None:
        return None
    key = tuple(sorted(series_ids))
    if reason.startswith("served by"):
        return reason
    failed_at = _failed.get(key)
    if failed_at is not None and time.time() - failed_at < RETRY_AFTER.total_seconds():
        return None
    request = forecasts.TrainRequest(
        selection=frames.Selection(series_ids=key), model=forecasts.INTERFERENCE, config=LOOP_CONFIG,
        horizon=HORIZON, run_backtest=False,
    )  # fmt: skip
    try:  # training fails (too little history, bad config) before it writes anything
        model = forecasts.train(session, request)
    except ForesightError as error:
        _failed[key] = time.time()
        return f"could not train the interference model of {what} ({reason}): {error.message[:200]}"
    _failed.pop(key, None)
    return f"trained interference model #{model.id} v{model.version} for {what} ({reason})"


def _why_train(session: Session, settings: Settings, series_ids: list[int]) -> str | None:
    """Why the series need a (new) interference model, or None when the one serving them is fresh."""
    oldest = None
    for series_id in series_ids:
        found = registry.model_of_series(session, series_id)
        if found is None:
            return "no model serves it"
        row = found[0]
        if row.name != forecasts.INTERFERENCE:
            return (
                f"served by {row.name!r}, which forecasts its values; the loop does not replace a model "
                "a user trained (train an interference model on it to use it)"
            )
        oldest = row.created_at if oldest is None else min(oldest, row.created_at)
    if oldest is not None and utcnow() - oldest >= timedelta(seconds=settings.retrain_interval_seconds):
        return "older than the retrain interval"
    return None
