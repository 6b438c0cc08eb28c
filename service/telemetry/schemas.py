"""API schemas of telemetry (separate from the ORM). The batch models document the wire format in
OpenAPI; the route parses the body itself, vectorised, for speed and sample-precise errors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.names import LabelValue, Name

EntityKind = Literal["cluster", "node", "workload", "power_domain"]


class EntityRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: EntityKind
    id: Name = Field(examples=["gpu-node-17"])
    cluster: Name = Field(default="default", examples=["west"])


class SeriesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: EntityRef
    metric: str = Field(pattern=r"^[A-Za-z_:][A-Za-z0-9_:.]{0,199}$", examples=["gpu_power_watts"])
    unit: str = Field(examples=["W"])
    labels: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")], LabelValue] = Field(
        default_factory=dict, max_length=32, examples=[{"gpu": "0"}]
    )
    samples: list[tuple[float | datetime, float]] = Field(
        min_length=1,
        description="[timestamp, value] pairs; timestamp in epoch seconds or RFC 3339 with an offset.",
        examples=[[[1731780000, 287.5], [1731780060, 291.0]]],
    )


class TelemetryBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    series: list[SeriesIn] = Field(min_length=1)


class IngestResult(BaseModel):
    series: int = Field(description="Series in the batch.")
    series_created: int = Field(description="Series seen for the first time.")
    samples: int = Field(description="Samples in the batch.")
    accepted: int = Field(description="Samples newly stored.")
    duplicates: int = Field(description="Samples already stored (a retry): skipped, not counted twice.")


class EntityOut(BaseModel):
    cluster: str
    kind: str
    id: str
    series: int


class SeriesOut(BaseModel):
    id: int
    cluster: str
    entity_kind: str
    entity_id: str
    metric: str
    unit: str
    labels: dict[str, str]
    created_at: datetime


class SeriesDetail(SeriesOut):
    samples: int
    first: datetime | None
    last: datetime | None


class EntityPage(BaseModel):
    items: list[EntityOut]
    total: int
    limit: int
    offset: int


class SeriesPage(BaseModel):
    items: list[SeriesOut]
    total: int
    limit: int
    offset: int


class SamplesOut(BaseModel):
    """Columnar answer, chart-ready. `step_seconds` is null for raw samples (then mean = max = p95)."""

    series_id: int
    start: datetime
    end: datetime
    step_seconds: int | None
    timestamps: list[datetime]
    mean: list[float]
    max: list[float]
    p95: list[float]
    count: list[int]
