"""Power recommendations: domain capping (POLCA), oversubscription and energy mode. Each reads its input
from the database, asks the pure policy, and records the Decision with its evidence like scaling does.

A missing or failing forecast never fails the request: the policy falls back to its conservative
baseline (reactive rule, nameplate sizing, maximum capacity) and the Decision says why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from policies.distribution import QuantileForecast
from policies.energy import EnergyInput
from policies.oversubscription import OversubscriptionInput
from policies.power_model import ServerState
from policies.types import Decision, PolicyError, build_policy
from service import readings as read
from service.decisions import service as decisions
from service.decisions.schemas import DecisionOut
from service.errors import InvalidInput
from service.inventory import service as inventory
from service.models import Workload
from service.power import domain as domains
from service.power.schemas import EnergyRequest, OversubscriptionQuery, PowerRequest

NO_FORECAST = "no forecast of the domain total"
NO_RATE = "no request-rate forecast"
ENERGY_FIELDS = (
    "llm_model", "hardware", "prompt_tokens", "output_tokens", "ttft_slo_ms", "tbt_slo_ms", "max_gpus",
)  # fmt: skip
ENERGY_DEFAULTS = {"llm_model": "llama2-70b", "hardware": "a100-80gb"}


def decide(policy: Any, inputs: Any, without_forecast: Callable[[], Any] | None, what: str) -> Decision:
    """The policy's Decision; if the forecast-driven answer fails, the answer without the forecast (and
    the reason); a failure either way is a 422 about the inputs, never a 500."""
    try:
        decision: Decision = policy.decide(inputs)
        return decision
    except (PolicyError, ValueError, ArithmeticError) as error:
        first = error
    if without_forecast is not None:
        try:
            decision = policy.decide(without_forecast())
        except (PolicyError, ValueError, ArithmeticError) as error:
            first = error
        else:
            reason = decision.fallback_reason or "baseline without the forecast"
            decision.fallback_reason = f"the forecast-driven answer failed ({first}); {reason}"
            return decision
    raise InvalidInput(f"cannot decide for {what}: {first}") from first


def explain(decision: Decision, state: domains.DomainState, no_forecast_prefix: str) -> Decision:
    """Say why there was no forecast in the fallback reason (or the notes), and how inputs were read."""
    notes = list(state.notes)
    reason = decision.fallback_reason
    if state.forecast_note and reason and reason.startswith(no_forecast_prefix):
        decision.fallback_reason = f"{reason} ({state.forecast_note})"
    elif state.forecast_note:
        notes.append(state.forecast_note)
    if notes:
        decision.details["notes"] = notes
    decision.details["inputs"] = state.evidence
    return decision


def _valid_for(step_seconds: float, horizon: int) -> timedelta:
    return timedelta(seconds=max(step_seconds * horizon, 60.0))


def recommend_power(session: Session, body: PowerRequest, requested_by: str) -> DecisionOut:
    """Caps for one power domain over the next window (POST /v1/recommendations/power)."""
    policy = decisions.policy_named(body.policy, "power")
    state = domains.load(
        session, body.domain, body.cluster, body.horizon, body.epsilon, body.policy != "power_reactive"
    )
    inputs = state.inputs
    fallback = (lambda: replace(inputs, total_forecast=None)) if inputs.total_forecast is not None else None
    decision = decide(policy, inputs, fallback, f"power domain {body.domain!r}")
    return decisions.record(
        session,
        explain(decision, state, NO_FORECAST),
        cluster_id=state.cluster_id,
        target_kind="power_domain",
        mode=state.mode,
        valid_for=_valid_for(state.step_seconds, body.horizon),
        requested_by=requested_by,
    )


def oversubscription(
    session: Session, query: OversubscriptionQuery, requested_by: str, *, store: bool = True
) -> DecisionOut:
    """How many more servers like `query`'s fit the domain at risk ε: recorded as a shadow decision
    (POST, the dashboard) or only answered (`store=False`: GET writes nothing)."""
    profile = domains.check_profile(query.profile, ["query", "profile"], "profile")
    state = domains.load(session, query.domain, query.cluster, query.horizon, query.epsilon)
    try:
        new = ServerState(
            name="new-server",
            priority=query.priority,
            profile=profile,
            gpus=query.gpus,
            power_watts=None,
            host_watts=query.host_watts,
        )
        inputs = OversubscriptionInput(state.inputs, new, query.max_extra)
    except PolicyError as error:
        raise InvalidInput(f"new server: {error}", details=[{"loc": ["query"], "msg": str(error)}]) from None
    dom = inputs.domain
    fallback = (
        (lambda: replace(inputs, domain=replace(dom, total_forecast=None)))
        if dom.total_forecast is not None
        else None
    )
    decision = decide(build_policy("oversubscription"), inputs, fallback, f"power domain {query.domain!r}")
    decision.details["new_server"] = {
        "profile": profile, "gpus": query.gpus, "priority": query.priority, "host_watts": query.host_watts,
    }  # fmt: skip
    explained = explain(decision, state, NO_FORECAST)
    valid_for = _valid_for(state.step_seconds, query.horizon)
    if not store:
        return decisions.preview(
            session, explained, cluster_id=state.cluster_id, target_kind="power_domain",
            valid_for=valid_for, requested_by=requested_by,
        )  # fmt: skip
    return decisions.record(
        session,
        explained,
        cluster_id=state.cluster_id,
        target_kind="power_domain",
        mode="shadow",  # an answer to a question: recorded for the audit log, never applied
        valid_for=valid_for,
        requested_by=requested_by,
    )


def _energy_setting(body: EnergyRequest, slo: dict[str, Any], name: str, workload: str) -> Any:
    value = getattr(body, name)
    if value is None:
        value = slo.get(name, ENERGY_DEFAULTS.get(name))
    if value is None:
        raise InvalidInput(
            f"{name} is needed: send it in the body or set slo.{name} with PUT /v1/workloads/{workload}",
            details=[{"loc": ["body", name], "msg": "required (or in the workload's slo)"}],
        )
    return value


def recommend_energy(session: Session, body: EnergyRequest, requested_by: str) -> DecisionOut:
    """Energy-minimising LLM serving configuration under the latency SLOs (POST …/energy)."""
    workload, cluster = inventory.find(session, Workload, body.workload, body.cluster)
    slo = workload.slo or {}
    settings = {name: _energy_setting(body, slo, name, workload.name) for name in ENERGY_FIELDS}
    metric = workload.capacity_metric or "requests_per_second"
    series = read.find_series(session, cluster, "workload", workload.name, metric)
    forecast: QuantileForecast | None = None
    why: str | None = f"workload {workload.name!r} has no {metric!r} series yet"
    step = 60.0
    if series is not None:
        forecast, why = read.forecast_window(session, series.id, body.horizon)
        step = forecast.step_seconds if forecast is not None else 60.0
    try:
        inputs = EnergyInput(
            target=workload.name,
            request_rate=forecast,
            prompt_tokens=float(settings["prompt_tokens"]),
            output_tokens=float(settings["output_tokens"]),
            ttft_slo_ms=float(settings["ttft_slo_ms"]),
            tbt_slo_ms=float(settings["tbt_slo_ms"]),
            max_gpus=int(settings["max_gpus"]),
            model=str(settings["llm_model"]),
            hardware=str(settings["hardware"]),
        )
    except (PolicyError, TypeError, ValueError) as error:
        raise InvalidInput(f"cannot decide energy mode for {workload.name!r}: {error}") from None
    fallback = (lambda: replace(inputs, request_rate=None)) if forecast is not None else None
    decision = decide(build_policy("energy_mode"), inputs, fallback, f"workload {workload.name!r}")
    if why and decision.fallback_reason and decision.fallback_reason.startswith(NO_RATE):
        decision.fallback_reason = f"{decision.fallback_reason} ({why})"
    elif why:
        decision.details["notes"] = [why]
    decision.details["load_series_id"] = series.id if series is not None else None
    return decisions.record(
        session,
        decision,
        cluster_id=workload.cluster_id,
        target_kind="workload",
        mode=workload.mode,
        valid_for=_valid_for(step, body.horizon),
        requested_by=requested_by,
    )
