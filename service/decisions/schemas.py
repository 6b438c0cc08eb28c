"""API shapes of decisions: the recommendation requests, a Decision as served, its audit trail, outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.names import Name, ShortName, Text

DecisionStatus = Literal["proposed", "approved", "rejected", "applied", "expired", "failed"]


class ScalingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    workload: Name = Field(description="Workload name")
    cluster: Name | None = Field(default=None, description="Needed when the name is ambiguous")
    horizon: int = Field(default=6, ge=1, le=288, description="Forecast steps the decision must cover")
    policy: ShortName = Field(default="bayesian_scaling", description="A registered scaling policy")
    epsilon: float | None = Field(default=None, gt=0, lt=1, description="Overrides the workload's ε")


class RightsizingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    workload: Name
    cluster: Name | None = None
    horizon: int = Field(default=12, ge=1, le=288)


class DecisionEventOut(BaseModel):
    ts: datetime
    actor: str
    from_status: str | None
    to_status: str
    note: str | None


class ActuationOut(BaseModel):
    """One attempt to carry the decision to the cluster and what the cluster said (the audit trail)."""

    attempt: int
    actuator: str
    dry_run: bool
    status: str = Field(description="started, applied, dry_run, skipped, refused, retry_later or failed")
    detail: str
    observed: dict[str, Any]
    actor: str
    started_at: datetime
    finished_at: datetime


class DecisionOut(BaseModel):
    id: int
    kind: str
    cluster: str | None
    target_kind: str
    target_name: str
    action: str
    params: dict[str, Any]
    status: DecisionStatus
    mode: str = Field(description="shadow (record only), approve (an operator decides) or auto")
    policy: str | None
    explanation: dict[str, Any] = Field(
        description="The evidence: forecast, candidates, guardrails, fallback"
    )
    actor: str | None = Field(description="Who last changed the status")
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    applied_at: datetime | None
    history: list[DecisionEventOut] = Field(default_factory=list)
    outcome: OutcomeOut | None = None
    actuations: list[ActuationOut] = Field(
        default_factory=list, description="Every attempt to actuate it, oldest first"
    )


class DecisionPage(BaseModel):
    items: list[DecisionOut]
    total: int
    limit: int
    offset: int


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    note: Text | None = Field(default=None, description="Why (kept in the audit log)")


class OutcomeIn(BaseModel):
    """What happened after the decision: feeds the adaptive ε (windows/violations) and, for mitigations,
    the causal training data (downtime)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    downtime_minutes: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    windows: int | None = Field(default=None, ge=1, le=1_000_000, description="Decision windows observed")
    violations: int | None = Field(
        default=None, ge=0, le=1_000_000, description="Windows that missed the SLO"
    )
    sla_violation_rate: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    power_watts: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    details: dict[str, Any] = Field(default_factory=dict)


class OutcomeOut(BaseModel):
    decision_id: int
    measured_at: datetime
    downtime_minutes: float | None
    sla_violation_rate: float | None
    power_watts: float | None
    windows: int | None
    violations: int | None
    details: dict[str, Any]


DecisionOut.model_rebuild()
