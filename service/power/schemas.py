"""API shapes of the power recommendations: domain capping, oversubscription (query) and energy mode.

The answer of each is a `DecisionOut` (service/decisions/schemas.py), recorded in the audit log."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.names import Name, ShortName


class PowerRequest(BaseModel):
    """Ask for the caps of one power domain over the next window."""

    model_config = ConfigDict(extra="forbid", strict=True)

    domain: Name = Field(description="Power domain name")
    cluster: Name | None = Field(default=None, description="Needed when the name is ambiguous")
    horizon: int = Field(default=12, ge=1, le=288, description="Forecast steps the decision must cover")
    policy: ShortName = Field(default="power_polca", description="A registered power policy")
    epsilon: float = Field(default=0.01, gt=0, lt=0.5, description="Allowed P(domain total > budget)")


class EnergyRequest(BaseModel):
    """Ask for the energy-minimising configuration of an LLM serving workload under its latency SLOs.

    Fields left out are read from the workload's `slo` (same names); one missing in both is a 422."""

    model_config = ConfigDict(extra="forbid", strict=True)

    workload: Name = Field(description="Workload name (its request-rate series)")
    cluster: Name | None = None
    horizon: int = Field(default=12, ge=1, le=288, description="Forecast steps the decision must cover")
    llm_model: ShortName | None = Field(default=None, description="e.g. llama2-70b")
    hardware: ShortName | None = Field(default=None, description="a100-80gb or h100-80gb")
    prompt_tokens: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    output_tokens: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    ttft_slo_ms: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Time to 1st token"
    )
    tbt_slo_ms: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Time between tokens"
    )
    max_gpus: int | None = Field(default=None, ge=1, le=100_000)


class OversubscriptionQuery(BaseModel):
    """How many more servers like the one described fit a domain's budget at risk ε (query parameters)."""

    model_config = ConfigDict(extra="forbid")

    domain: Name = Field(description="Power domain name")
    cluster: Name | None = Field(default=None, description="Needed when the name is ambiguous")
    profile: ShortName = Field(
        max_length=50,
        description="GPU profile of the new server: a40, p100, rtx6000, v100, a100, h100",
    )
    gpus: int = Field(default=8, ge=1, le=64, description="GPUs per new server")
    priority: int = Field(
        default=0, ge=-1000, le=1000, description="Priority of the new server (higher = capped last)"
    )
    host_watts: float = Field(
        default=0.0, ge=0, le=100_000, allow_inf_nan=False, description="Non-GPU draw (W)"
    )
    horizon: int = Field(
        default=48, ge=1, le=2016, description="Forecast steps of the planning window (cover the peak hours)"
    )
    epsilon: float = Field(default=0.01, gt=0, lt=0.5, description="Allowed P(domain total > budget)")
    max_extra: int = Field(default=1000, ge=0, le=100_000, description="Largest answer considered")


class OversubscriptionRequest(OversubscriptionQuery):
    """The same question as a JSON body (POST: recorded), with strict numbers."""

    model_config = ConfigDict(extra="forbid", strict=True)
