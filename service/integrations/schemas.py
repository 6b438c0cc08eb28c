"""API schemas of the integrations (receivers' answers, the KEDA metrics-api answer)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from service.telemetry.schemas import IngestResult


class ReceiveResult(IngestResult):
    """What a receiver stored; `dropped` counts samples that can never be stored, by reason."""

    source: str = Field(description="remote_write, otlp or backfill.")
    dropped: dict[str, int] = Field(
        default_factory=dict,
        description="Left out by reason: stale_marker, not_finite, negative_value, future_timestamp, "
        "no_entity, invalid_label, … (never retried: resending cannot fix them).",
    )


class TargetMetric(BaseModel):
    """The load a workload is forecast to carry (for a KEDA `AverageValue` target per replica)."""

    metric: str
    value: float = Field(description="Upper forecast quantile over the horizon, or the last observation.")
    quantile: float | None = Field(description="Forecast level used; null when observed.")
    per_replica_target: float | None = Field(description="replica_capacity x target_utilisation.")
    source: str = Field(description="forecast or observed.")


class KedaOut(BaseModel):
    """A workload's recommended replicas for KEDA's metrics-api scaler (valueLocation `replicas`)."""

    workload: str
    cluster: str
    replicas: int = Field(description="Recommended replicas (current replicas when nothing is recommended).")
    current_replicas: int
    source: str = Field(description="decision or workload (no usable decision).")
    decision_id: int | None = None
    status: str | None = None
    policy: str | None = None
    decided_at: datetime | None = None
    expires_at: datetime | None = Field(default=None, description="When the decision stops being an answer.")
    stale: bool = Field(
        default=False,
        description="True when no unexpired decision exists: `replicas` is then the current count.",
    )
    stale_reason: str | None = None
    within_default_hpa_tolerance: bool = Field(
        default=False,
        description="True when `replicas` is within 10 % of the current count: an HPA with the default "
        "tolerance ignores such a change (pair KEDA with tolerance 0: docs/integrations.md).",
    )
    target_metric: TargetMetric | None = None
