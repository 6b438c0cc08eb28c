"""API shapes of replay runs: start one (a bundled or uploaded trace), watch it, read its results."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.names import ShortName

ReplayStatus = Literal["queued", "running", "succeeded", "failed"]


class ReplayRequest(BaseModel):
    """One policy (`policy`: a run) or several (`policies`: a comparison over `seeds` seeds), on a bundled
    trace (`trace`, see GET /v1/replays/traces) or an uploaded one (`trace_csv`, the file's text)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    trace: ShortName | None = Field(default=None, description="A bundled trace name")
    trace_csv: str | None = Field(
        default=None, max_length=20_000_000, description="An uploaded trace (CSV text)"
    )
    trace_name: str = Field(
        default="uploaded.csv",
        max_length=200,
        pattern=r"^[\w.-]*\w[\w.-]*$",
        description="A file name: letters, digits, _ . - (not only dots)",
    )
    trace_format: Literal["azure-llm", "long"] | None = Field(
        default=None, description="Required with trace_csv; a bundled trace knows its own"
    )
    policy: ShortName | None = Field(
        default=None, max_length=50, description="e.g. bayesian, hpa, static-peak"
    )
    policies: list[ShortName] | None = Field(default=None, min_length=1, max_length=10)
    seeds: int = Field(default=1, ge=1, le=20, description="Seeds per policy (comparisons)")
    config: dict[str, Any] = Field(default_factory=dict, description="Simulation settings (docs/replay.md)")

    @model_validator(mode="after")
    def _one_of_each(self) -> ReplayRequest:
        if (self.trace is None) == (self.trace_csv is None):
            raise ValueError("give exactly one of trace (a bundled trace) or trace_csv (an uploaded one)")
        if (self.policy is None) == (self.policies is None):
            raise ValueError("give exactly one of policy (a run) or policies (a comparison)")
        if self.trace_csv is not None and self.trace_format is None:
            raise ValueError("an uploaded trace needs its trace_format (azure-llm or long)")
        return self


class ReplayOut(BaseModel):
    id: int
    kind: Literal["run", "compare"]
    status: ReplayStatus
    trace: str
    trace_format: str
    policies: list[str]
    seeds: int
    config: dict[str, Any]
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: float = Field(description="0..1")
    error: str | None = Field(description="Why it failed")
    summary: dict[str, Any] | None = Field(
        description="A run's summary.json, or a comparison's {policy: {metric: {mean, std, min, max}}}"
    )
    has_report: bool
    has_timeline: bool


class ReplayPage(BaseModel):
    items: list[ReplayOut]
    total: int


class BundledTrace(BaseModel):
    name: str
    trace_format: str
    description: str
