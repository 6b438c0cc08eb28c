"""API shapes of unhealthy-node events, mitigation requests and mitigation-model training."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policies.mitigation_types import ACTIONS_BY_NAME
from service.names import Name, Number, ShortName, name_problem

ACTION_NAMES = tuple(ACTIONS_BY_NAME)
MAX_SIGNALS = 256
"""Signals (and context entries) one event may carry: far more than any detector reports."""
MAX_BULK_EVENTS = 2000
"""Events one bulk import may carry: each is looked up and stored, so 10,000 took over a minute (a
client timeout); import longer histories in several requests."""


class NodeEventBody(BaseModel):
    """One unhealthy-node signal: numeric signals, context (numbers or labels), and — for history — the
    action that was taken and the downtime that followed."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ts: str | Number | None = Field(
        default=None, description="Epoch seconds or RFC 3339, from 1970 on; default: now"
    )
    kind: str = Field(
        min_length=1, max_length=64, description="e.g. ecc_errors, gpu_fell_off_bus, disk_failure"
    )
    severity: str = Field(default="warning", pattern="^(warning|error|critical)$")
    signals: dict[Name, Number] = Field(
        default_factory=dict, max_length=MAX_SIGNALS, description="Numeric signals, e.g. error counts"
    )
    context: dict[Name, Number | str] = Field(
        default_factory=dict, max_length=MAX_SIGNALS, description="e.g. hardware age, workload type"
    )
    action_taken: str | None = Field(
        default=None, max_length=64, description=f"One of {', '.join(ACTION_NAMES)}"
    )
    downtime_minutes: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @field_validator("kind")
    @classmethod
    def _printable_kind(cls, value: str) -> str:
        if problem := name_problem(value, max_length=64):
            raise ValueError(problem)
        return value

    @field_validator("action_taken")
    @classmethod
    def _known_action(cls, value: str | None) -> str | None:
        if value is not None and value not in ACTIONS_BY_NAME:
            raise ValueError(f"{value!r} is not an action; use one of {', '.join(ACTION_NAMES)}")
        return value

    @field_validator("context")
    @classmethod
    def _printable_context(cls, value: dict[str, float | str]) -> dict[str, float | str]:
        for key, item in value.items():
            if isinstance(item, str) and (problem := name_problem(item, allow_empty=True)):
                raise ValueError(f"{key}: {problem}")
        return value


class NodeEventIn(NodeEventBody):
    cluster: Name


class BulkNodeEvent(NodeEventIn):
    node: Name


class BulkNodeEvents(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    events: list[BulkNodeEvent] = Field(min_length=1, max_length=MAX_BULK_EVENTS)


class NodeEventOut(BaseModel):
    id: int
    node: str
    cluster: str
    ts: datetime
    kind: str
    severity: str
    signals: dict[str, Any]
    context: dict[str, Any]
    action_taken: str | None
    downtime_minutes: float | None
    resolved_at: datetime | None


class BulkResult(BaseModel):
    created: int
    duplicates: int


class MitigationRequest(BaseModel):
    """Ask what to do about a node: name a stored event (`event_id`) or send the event itself."""

    model_config = ConfigDict(extra="forbid", strict=True)

    node: Name
    cluster: Name | None = None
    event_id: int | None = Field(default=None, ge=1, le=2**62)
    event: NodeEventBody | None = None
    policy: ShortName = "mitigation_causal"

    @model_validator(mode="after")
    def _one_event(self) -> MitigationRequest:
        if (self.event_id is None) == (self.event is None):
            raise ValueError("give exactly one of event_id (a stored event) or event (a new one)")
        return self


class MitigationTrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    n_estimators: int = Field(default=200, ge=4, le=2000, multiple_of=4)
    min_events: int = Field(default=200, ge=20, le=10_000_000)
    min_per_action: int = Field(default=20, ge=5, le=100_000)
    seed: int = Field(default=0, ge=0)
