"""API shapes of replay runs: start one (a bundled or uploaded trace), watch it, read its results."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.names import Name, ShortName

ReplayStatus = Literal["queued", "running", "succeeded", "failed"]
SAVINGS_POLICIES = ("bayesian", "hpa", "static-peak")
HPA_TARGETS = (0.5, 0.6, 0.7, 0.8, 0.9)


class StoredSource(BaseModel):
    """Stored telemetry to replay: a workload's load series (its `capacity_metric`, or `metric`) or any
    series by id; the newest samples, or those of the last `hours`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    workload: Name | None = None
    cluster: Name | None = None
    metric: Name | None = Field(default=None, description="Default: the capacity metric")
    series: int | None = Field(default=None, ge=1, le=2**62, description="A series id instead")
    hours: float | None = Field(default=None, gt=0, le=24 * 366, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one(self) -> StoredSource:
        if (self.workload is None) == (self.series is None):
            raise ValueError("give exactly one of workload or series")
        return self


class ReplayRequest(BaseModel):
    """One policy (`policy`: a run) or several (`policies`: a comparison over `seeds` seeds), on a bundled
    trace (`trace`, see GET /v1/replays/traces), an uploaded one (`trace_csv`, the file's text) or stored
    telemetry (`source`). With `hpa_targets` a comparison also sweeps HPA's target utilisation (its
    cost/violation curve) and reports the savings; a `source` without policies asks exactly that:
    bayesian, hpa and static-peak, HPA swept over 0.5-0.9 ("what would Foresight have saved?")."""

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
    source: StoredSource | None = Field(default=None, description="Stored telemetry as the trace")
    policy: ShortName | None = Field(
        default=None, max_length=50, description="e.g. bayesian, hpa, static-peak"
    )
    policies: list[ShortName] | None = Field(default=None, min_length=1, max_length=10)
    seeds: int = Field(default=1, ge=1, le=20, description="Seeds per policy (comparisons)")
    config: dict[str, Any] = Field(default_factory=dict, description="Simulation settings (docs/replay.md)")
    hpa_targets: list[float] | None = Field(
        default=None, min_length=1, max_length=12, description="HPA target utilisations to sweep (0..1]"
    )

    @model_validator(mode="after")
    def _one_of_each(self) -> ReplayRequest:
        given = [name for name in ("trace", "trace_csv", "source") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of trace (a bundled trace), trace_csv (an uploaded one) or source (stored "
                "telemetry)"
            )
        if self.source is not None and self.policy is None and self.policies is None:
            self.policies = list(SAVINGS_POLICIES)
            self.hpa_targets = self.hpa_targets or list(HPA_TARGETS)
        if (self.policy is None) == (self.policies is None):
            raise ValueError("give exactly one of policy (a run) or policies (a comparison)")
        if self.hpa_targets is not None:
            if self.policies is None or "bayesian" not in self.policies:
                raise ValueError("hpa_targets needs a comparison that includes the bayesian policy")
            if any(not 0 < t <= 1 for t in self.hpa_targets):
                raise ValueError("hpa_targets are utilisations in (0, 1]")
        if self.trace_csv is not None and self.trace_format is None:
            raise ValueError("an uploaded trace needs its trace_format (azure-llm or long)")
        return self


class ReplayOut(BaseModel):
    id: int
    kind: Literal["run", "compare", "savings"]
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
        description="A run's summary.json; a comparison's {policy: {metric: {mean, std, min, max}}}; a "
        "savings run's {comparison, hpa_curve: [{target, replica_hours, sla_violation_rate}], savings}"
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
