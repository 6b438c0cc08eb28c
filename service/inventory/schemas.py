"""API shapes of what Foresight manages: workloads (scaling settings), nodes and power domains."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.names import LongName, Name

Mode = Literal["shadow", "approve", "auto"]


class WorkloadConfig(BaseModel):
    """Scaling settings of a workload; fields left out keep their value."""

    model_config = ConfigDict(extra="forbid", strict=True)

    cluster: Name
    replicas: int | None = Field(default=None, ge=0, le=100_000, description="Replicas running now")
    min_replicas: int | None = Field(default=None, ge=0, le=100_000)
    max_replicas: int | None = Field(default=None, ge=1, le=100_000)
    replica_capacity: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Load one replica serves at 100 % (load metric's unit)",
    )
    capacity_metric: Name | None = Field(default=None, description="The workload's load series")
    mode: Mode | None = None
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    slo: dict[str, Any] | None = Field(
        default=None,
        description="e.g. {target_utilisation: 0.8, epsilon: 0.05, cost_per_replica: 1, sla_penalty: 50}",
    )
    scale_target: LongName | None = Field(
        default=None,
        description="What the actuator scales, as an HPA's scaleTargetRef: namespace/Deployment|StatefulSet/"
        "name (default: the workload's name when it has that form)",
        examples=["shop/Deployment/checkout"],
    )
    performance_metric: Name | None = Field(
        default=None,
        description="The workload's performance series (per-replica throughput, latency or a probe "
        "benchmark); with an interference model trained on it, capacity is reduced by the forecast slowdown",
    )
    behavior: dict[str, Any] | None = Field(
        default=None,
        description="HPA-style spec.behavior: scaleUp / scaleDown with stabilizationWindowSeconds, "
        "selectPolicy, policies [{type: Pods|Percent, value, periodSeconds}] and tolerance",
    )


class WorkloadOut(BaseModel):
    name: str
    cluster: str
    replicas: int
    min_replicas: int
    max_replicas: int | None
    replica_capacity: float | None
    capacity_metric: str | None
    mode: Mode
    priority: int
    slo: dict[str, Any]
    scale_target: str | None = Field(description="The namespace/kind/name actuators scale (None: not set)")
    behavior: dict[str, Any] | None
    performance_metric: str | None


class NodeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    cluster: Name
    pool: Name | None = None
    power_domain: Name | None = Field(default=None, description="Created if missing")
    hardware: dict[str, Any] | None = Field(
        default=None,
        description="e.g. {gpu: a40, gpus: 8, nameplate_watts: 3000, idle_watts: 600, priority: 1}",
    )
    status: Literal["healthy", "unhealthy", "out_of_service", "repair"] | None = None


class NodeOut(BaseModel):
    name: str
    cluster: str
    pool: str | None
    power_domain: str | None
    hardware: dict[str, Any]
    status: str


class PowerDomainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    cluster: Name
    budget_watts: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    mode: Mode | None = Field(default=None, description="How power decisions of this domain are recorded")


class PowerDomainOut(BaseModel):
    name: str
    cluster: str
    budget_watts: float | None
    mode: Mode
    nodes: list[str]
