"""Forecasts and current recommendations in the Prometheus exposition format, for Prometheus to scrape
and Grafana to chart forecast bands next to the actuals.

Families: `foresight_forecast{quantile, horizon, ahead_seconds, …}` and `foresight_forecast_mean` (the
distribution `ahead_seconds` after the cutoff; chart it with `offset` equal to that lead to line it up with
the actual series), `foresight_forecast_cutoff_timestamp_seconds`, `foresight_recommendation{kind, target,
param, …}` (each numeric parameter of the newest live decision per target), `foresight_workload_replicas`.
Samples carry no timestamps: Prometheus stamps them at scrape time, which is when they were true.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy.orm import Session

from service.errors import DatabaseUnavailable, ForesightError
from service.forecasts import service as forecasts
from service.forecasts.served import to_api
from service.integrations import repository
from service.ops.logging import get_logger

log = get_logger("foresight.exports")
RESERVED = {
    "cluster",
    "entity_kind",
    "entity",
    "metric",
    "series_id",
    "quantile",
    "horizon",
    "ahead_seconds",
    "model",
    "job",
    "instance",
    "__name__",
}


class _Families:
    """A collector that yields families built for one scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _gauge(name: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation)


def render(
    session: Session, *, horizon: int, max_series: int, cluster: str | None = None, metric: str | None = None
) -> bytes:
    """The exposition text of forecasts (series some forecaster covers) and recommendations."""
    families = _forecast_families(session, horizon, max_series, cluster, metric)
    families += _recommendation_families(session, cluster)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def _forecast_families(
    session: Session, horizon: int, max_series: int, cluster: str | None, metric: str | None
) -> list[Metric]:
    quantiles = _gauge("foresight_forecast", "Forecast quantile of a series, ahead_seconds after the cutoff.")
    means = _gauge("foresight_forecast_mean", "Forecast mean of a series, ahead_seconds after the cutoff.")
    cutoffs = _gauge("foresight_forecast_cutoff_timestamp_seconds", "Last observation the forecast used.")
    failed = _gauge("foresight_export_forecast_failures", "Covered series whose forecast failed this scrape.")
    failures = 0
    for series, cluster_name in repository.covered_series(session, max_series, cluster, metric):
        try:
            answer = to_api(forecasts.forecast(session, series.id, horizon))
        except DatabaseUnavailable:
            raise
        except ForesightError as error:
            failures += 1
            log.warning("export_forecast_failed", series_id=series.id, error=error.message)
            continue
        base = {k: v for k, v in dict(series.labels).items() if k not in RESERVED}
        base.update(
            cluster=cluster_name,
            entity_kind=series.entity_kind,
            entity=series.entity_name,
            metric=series.metric,
            series_id=str(series.id),
        )
        cutoff = answer.cutoff.timestamp()
        cutoffs.add_sample(cutoffs.name, {**base, "model": f"{answer.model}:{answer.model_version}"}, cutoff)
        for point in answer.points:
            lead = {
                "horizon": str(point.horizon),
                "ahead_seconds": f"{point.timestamp.timestamp() - cutoff:g}",
            }
            means.add_sample(means.name, {**base, **lead}, point.mean)
            for level, value in point.quantiles.items():
                quantiles.add_sample(quantiles.name, {**base, **lead, "quantile": level}, value)
    failed.add_metric([], failures)
    return [quantiles, means, cutoffs, failed]


def _recommendation_families(session: Session, cluster: str | None) -> list[Metric]:
    values = _gauge("foresight_recommendation", "Numeric parameters of the newest live decision per target.")
    stamps = _gauge("foresight_recommendation_timestamp_seconds", "When that decision was made.")
    for decision, cluster_name in repository.latest_decisions(session, cluster):
        labels = {
            "kind": decision.kind,
            "target_kind": decision.target_kind,
            "target": decision.target_name,
            "cluster": cluster_name or "",
            "status": decision.status,
            "action": decision.action,
            "policy": decision.policy or "",
        }
        stamps.add_sample(stamps.name, labels, decision.created_at.timestamp())
        for param, value in _numbers(decision.params):
            values.add_sample(values.name, {**labels, "param": param}, value)
    replicas = _gauge("foresight_workload_replicas", "Replicas a workload runs now (its configuration).")
    for workload, cluster_name in repository.workloads(session, cluster):
        replicas.add_sample(
            replicas.name, {"cluster": cluster_name, "workload": workload.name}, workload.replicas
        )
    return [values, stamps, replicas]


def _numbers(params: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, float]]:
    """Numeric leaves of a decision's params, nested keys joined with dots (lists are skipped)."""
    for key, value in sorted(params.items()):
        if isinstance(value, bool | int | float):
            yield prefix + key, float(value)
        elif isinstance(value, dict):
            yield from _numbers(value, f"{prefix}{key}.")
