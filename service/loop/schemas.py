"""API shapes of the control loop: its targets with their cadence, actuator and freeze, and the kill
switch."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.names import Name, ShortName, Text

TargetKind = Literal["workload", "power_domain", "node"]


class TargetOut(BaseModel):
    kind: str
    name: str
    cluster: str | None
    cadence_seconds: float = Field(description="How often the loop decides for it")
    actuator: str = Field(description="kubernetes, webhook or none (record only)")
    frozen: bool
    frozen_reason: str | None
    frozen_by: str | None
    next_due_at: datetime
    last_run_at: datetime | None
    last_status: str | None = Field(description="decided, unchanged, error, failed or skipped")
    last_detail: dict[str, Any]


class TargetConfig(BaseModel):
    """Loop settings of one target; fields left out keep their value, `null` restores the default."""

    model_config = ConfigDict(extra="forbid", strict=True)

    cluster: Name | None = None
    cadence_seconds: float | None = Field(default=None, ge=5, le=86_400, allow_inf_nan=False)
    actuator: ShortName | None = Field(default=None, max_length=32)
    frozen: bool | None = Field(default=None, description="Kill switch of this target: no actuation")
    reason: Text | None = Field(default=None, max_length=500, description="Why (kept with the freeze)")


class Freeze(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: Text | None = Field(default=None, max_length=500)


class LoopStatus(BaseModel):
    enabled: bool = Field(description="Whether this process runs the loop (FORESIGHT_LOOP_ENABLED)")
    actuation: Literal["enabled", "frozen", "disabled"] = Field(
        description="disabled: FORESIGHT_ACTUATION_ENABLED=false; frozen: the fleet-wide freeze is on"
    )
    frozen_reason: str | None
    frozen_by: str | None
    default_cadence_seconds: float
    default_actuator: str
    targets: int
    by_status: dict[str, int]
    overdue: int = Field(description="Targets due more than two cadences ago (the loop is behind)")
