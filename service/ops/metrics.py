"""Prometheus metrics of the service (exposed at /metrics). With several worker processes
(`foresight serve --workers N`), PROMETHEUS_MULTIPROC_DIR is set before the workers start and /metrics
aggregates every worker's values."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "foresight_http_requests_total", "HTTP requests by route and status.", ["method", "route", "status"],
    registry=REGISTRY,
)  # fmt: skip
HTTP_LATENCY = Histogram(
    "foresight_http_request_duration_seconds", "HTTP request latency by route.", ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY,
)  # fmt: skip
INGESTED_SAMPLES = Counter(
    "foresight_ingested_samples_total", "Samples newly stored by ingestion.", registry=REGISTRY
)
DUPLICATE_SAMPLES = Counter(
    "foresight_duplicate_samples_total",
    "Samples received again and skipped (safe retries).",
    registry=REGISTRY,
)
REJECTED_BATCHES = Counter(
    "foresight_rejected_batches_total", "Telemetry batches refused, by reason.", ["reason"], registry=REGISTRY
)
INGEST_PHASE = Histogram(
    "foresight_ingest_phase_seconds", "Time spent per ingestion phase.", ["phase"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=REGISTRY,
)  # fmt: skip
ACTUATIONS = Counter(
    "foresight_actuations_total",
    "Attempts to carry a decision to the cluster, by actuator, decision kind, result and dry run.",
    ["actuator", "kind", "status", "dry_run"],
    registry=REGISTRY,
)


def exposition_registry() -> CollectorRegistry:
    """The registry to render: this process's, or all workers' in multiprocess mode."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    aggregate = CollectorRegistry()
    multiprocess.MultiProcessCollector(aggregate)
    return aggregate
