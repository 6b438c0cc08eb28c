"""Build a power domain's policy input from the database.

Rules (each server = one node attached to the domain with `PUT /v1/nodes/{name}`):

* Hardware: the node's `hardware` JSON gives `profile` (or `gpu`), `gpus`, `priority` (default 0),
  `host_watts` (non-GPU draw, default 0) and `power_limit_watts` (a static per-GPU cap, default none).
* Power now: the sum of the latest sample of the node's `node_power_watts` series (several series =
  several feeds); without one, `host_watts` + the latest `gpu_power_watts` of each GPU series (labels
  `gpu=…`), only when at least `gpus` GPUs report. A reading older than the domain's freshest one by more
  than `STALE_SECONDS` is ignored. Missing → None: the policy assumes nameplate and says so.
* Caps in force: the `power_limits_watts` / `brake` params of the domain's latest approved or applied
  power decision; servers it does not name keep their hardware `power_limit_watts`.
* Hysteresis: `details.calm_windows` of the domain's latest power decision (any status), when it was made
  within `CALM_LOOKBACK`; older or none → 0 (caps are then held longer, the conservative side). Asked
  again within `SAME_WINDOW_SECONDS` it is the same window: the count does not advance (so repeated
  requests cannot skip the hysteresis).
* Total forecast: the series (entity kind `power_domain`, id = domain, metric `power_watts`) through
  `readings.forecast_window`; missing or unusable → None and the reason goes into the Decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from policies.distribution import QuantileForecast
from policies.power_model import PowerDomainInput, ServerState
from policies.power_profiles import gpu_curve
from policies.types import PolicyError
from service import readings as read
from service.errors import Conflict, InvalidInput
from service.inventory import service as inventory
from service.models import Node, PowerDomain
from service.power import repository as repo

STALE_SECONDS = 600.0
CALM_LOOKBACK = timedelta(minutes=30)
SAME_WINDOW_SECONDS = 60.0
CAP_STATUSES = ("approved", "applied")
TOTAL_METRIC = "power_watts"


@dataclass
class DomainState:
    """The policy input and the evidence of how it was read (stored with the Decision)."""

    inputs: PowerDomainInput
    cluster_id: int
    step_seconds: float
    forecast_note: str | None
    notes: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    mode: str = "shadow"
    """The domain's mode: how its power decisions are recorded (shadow / approve / auto)."""


def _bad(node: str, name: str, problem: str) -> InvalidInput:
    return InvalidInput(
        f"node {node!r} hardware.{name}: {problem}; fix it with PUT /v1/nodes/{node}",
        details=[{"loc": ["nodes", node, "hardware", name], "msg": problem}],
    )


def _number(node: str, hw: dict[str, Any], name: str, default: Any, convert: Callable[[Any], Any]) -> Any:
    value = hw.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(node, name, f"must be a number, got {value!r}")
    if convert is int and value != int(value):
        raise _bad(node, name, f"must be a whole number, got {value!r}")
    return convert(value)


def check_profile(profile: str, loc: list[str | int], owner: str) -> str:
    """A GPU profile policies know, else a 422 naming the field."""
    try:
        return gpu_curve(profile).name
    except PolicyError as error:
        raise InvalidInput(f"{owner}: {error}", details=[{"loc": loc, "msg": str(error)}]) from None


def server_of(node: Node, power: float | None, cap: float | None, braked: bool) -> ServerState:
    """One node as the policy's ServerState (409 when its hardware is not configured, 422 when wrong)."""
    hw = node.hardware or {}
    profile = hw.get("profile", hw.get("gpu"))
    if profile is None or "gpus" not in hw:
        raise Conflict(
            f"node {node.name!r} has no hardware.profile (or gpu) and gpus; set them with PUT /v1/nodes/"
            f"{node.name} {{cluster, hardware: {{profile: a100, gpus: 8, priority: 1}}}}"
        )
    if not isinstance(profile, str):
        raise _bad(node.name, "profile", f"must be a GPU profile name, got {profile!r}")
    check_profile(
        profile, ["nodes", node.name, "hardware", "profile"], f"node {node.name!r} hardware.profile"
    )
    gpus = _number(node.name, hw, "gpus", None, int)
    if gpus is None or gpus < 1:
        raise _bad(node.name, "gpus", f"must be >= 1, got {gpus!r}")
    static_cap = _number(node.name, hw, "power_limit_watts", None, float)
    try:
        return ServerState(
            name=node.name,
            priority=_number(node.name, hw, "priority", 0, int),
            profile=profile,
            gpus=gpus,
            power_watts=power,
            host_watts=_number(node.name, hw, "host_watts", 0.0, float),
            power_limit_watts=cap if cap is not None else static_cap,
            braked=braked,
        )
    except PolicyError as error:
        raise InvalidInput(
            f"node {node.name!r} hardware is unusable: {error}; fix it with PUT /v1/nodes/{node.name}",
            details=[{"loc": ["nodes", node.name, "hardware"], "msg": str(error)}],
        ) from None


def power_now(nodes: list[Node], readings: list[repo.Reading], notes: list[str]) -> dict[str, float | None]:
    """Whole-server draw per node by the rule in the module docstring."""
    newest = max((r.ts for r in readings), default=0.0)
    fresh = [r for r in readings if newest - r.ts <= STALE_SECONDS]
    stale = sorted({r.node for r in readings} - {r.node for r in fresh})
    if stale:
        notes.append(f"power readings of {stale} are over {STALE_SECONDS:g} s older than the domain's newest")
    out: dict[str, float | None] = {}
    for node in nodes:
        mine = [r for r in fresh if r.node == node.name]
        whole = [r.value for r in mine if r.metric == repo.NODE_METRIC]
        gpus = [r.value for r in mine if r.metric == repo.GPU_METRIC]
        expected = (node.hardware or {}).get("gpus")
        if whole:
            out[node.name] = sum(whole)
        elif gpus and isinstance(expected, int) and len(gpus) >= expected:
            host = (node.hardware or {}).get("host_watts", 0.0)
            out[node.name] = float(host if isinstance(host, int | float) else 0.0) + sum(gpus)
        else:
            out[node.name] = None
            if gpus:
                notes.append(f"node {node.name!r}: only {len(gpus)} of {expected} GPUs report power")
    return out


def current_caps(session: Session, cluster_id: int, domain: str) -> tuple[dict[str, Any], bool, int | None]:
    """(per-GPU limit by server, brake, decision id) of the latest approved / applied power decision."""
    row = repo.latest_decision(session, cluster_id, domain, CAP_STATUSES)
    if row is None:
        return {}, False, None
    limits = row.params.get("power_limits_watts") or {}
    return dict(limits), bool(row.params.get("brake", False)), row.id


def calm_windows(session: Session, cluster_id: int, domain: str, now: datetime) -> tuple[int, int | None]:
    """The hysteresis count the domain's latest power decision handed on, and that decision's id. Asked
    again within `SAME_WINDOW_SECONDS`, the window is the same one: the count that decision started from."""
    row = repo.latest_decision(session, cluster_id, domain)
    if row is None or row.created_at < now - CALM_LOOKBACK:
        return 0, None
    details = row.explanation.get("details") or {}
    if row.created_at > now - timedelta(seconds=SAME_WINDOW_SECONDS):
        value = (details.get("inputs") or {}).get("calm_windows_in", 0)
    else:
        value = details.get("calm_windows", 0)
    return (int(value) if isinstance(value, int | float) and value >= 0 else 0), row.id


def _forecast(
    session: Session, cluster: str, domain: str, horizon: int
) -> tuple[QuantileForecast | None, str | None, float, int | None]:
    series = read.find_series(session, cluster, "power_domain", domain, TOTAL_METRIC)
    if series is None:
        missing = (
            f"power domain {domain!r} has no {TOTAL_METRIC!r} series (entity kind power_domain); send the "
            "domain total as telemetry and train a forecaster on it"
        )
        return None, missing, 60.0, None
    forecast, why = read.forecast_window(session, series.id, horizon)
    step = (
        forecast.step_seconds if forecast is not None else read.observed(session, series.id, 20).step_seconds
    )
    return forecast, why, step, series.id


def load(
    session: Session, name: str, cluster: str | None, horizon: int, epsilon: float, with_forecast: bool = True
) -> DomainState:
    """The domain's PowerDomainInput read from the database (404 unknown, 409 no budget / no nodes)."""
    domain, cluster_name = inventory.find(session, PowerDomain, name, cluster)
    if domain.budget_watts is None:
        raise Conflict(
            f"power domain {name!r} has no budget; set it with PUT /v1/power-domains/{name} "
            f'{{"cluster": "{cluster_name}", "budget_watts": …}}'
        )
    nodes = inventory.nodes_of_domain(session, domain.id)
    if not nodes:
        raise Conflict(
            f"power domain {name!r} has no nodes; attach them with PUT /v1/nodes/{{name}} "
            f'{{"cluster": "{cluster_name}", "power_domain": "{name}", "hardware": {{...}}}}'
        )
    notes: list[str] = []
    power = power_now(nodes, repo.latest_readings(session, domain.cluster_id, [n.name for n in nodes]), notes)
    limits, brake, caps_from = current_caps(session, domain.cluster_id, name)
    servers = tuple(server_of(n, power[n.name], limits.get(n.name), brake) for n in nodes)
    now = datetime.now(UTC)
    calm, calm_from = calm_windows(session, domain.cluster_id, name, now)
    forecast, why, step, series_id = (
        _forecast(session, cluster_name, name, horizon) if with_forecast else (None, None, 60.0, None)
    )
    try:
        inputs = PowerDomainInput(
            domain=name,
            budget_watts=domain.budget_watts,
            servers=servers,
            total_forecast=forecast,
            epsilon=epsilon,
            now_ts=now.timestamp(),
            calm_windows=calm,
        )
    except PolicyError as error:
        raise InvalidInput(f"cannot decide for power domain {name!r}: {error}") from None
    evidence = {
        "power_watts_now": power,
        "caps_from_decision": caps_from,
        "calm_windows_in": calm,
        "calm_windows_from_decision": calm_from,
        "total_series_id": series_id,
    }
    return DomainState(inputs, domain.cluster_id, step, why, notes, evidence, domain.mode)
