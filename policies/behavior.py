"""A workload's scaling `behavior` with the Kubernetes HPA's field names and semantics, applied to a
recommended replica count before it is actuated; and the HPA's own arithmetic on a metric, so a KEDA
answer can be checked against what the HPA behind KEDA will do with it.

`behavior` reads as an HPA's `spec.behavior`::

    {"scaleUp":   {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "tolerance": 0.1,
                   "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15},
                                {"type": "Pods", "value": 4, "periodSeconds": 15}]},
     "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                   "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}

An absent direction or field takes the HPA's default (above; tolerance 0.1). The steps follow the HPA
controller: (1) tolerance — a change within `tolerance` of the current count is not made; (2)
stabilization — the answer is held between the lowest recommendation of the scale-up window and the
highest of the scale-down window; (3) rate — within each policy's period, replicas may grow to
`start + value` (Pods) or `ceil(start · (1 + value/100))` (Percent) and shrink to `start - value` or
`floor(start · (1 - value/100))`, where `start` is the count at the period's start (the current count
less what was added / plus what was removed within it); `selectPolicy` Max takes the policy allowing the
most change, Min the least, Disabled forbids the direction; (4) min / max replicas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from policies.slo import strict_number
from policies.types import GuardrailEffect, InvalidPolicyInput

PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]
DEFAULT_TOLERANCE = 0.1
"""The HPA controller's default (`--horizontal-pod-autoscaler-tolerance`)."""


@dataclass(frozen=True)
class RatePolicy:
    type: PolicyType
    value: int
    period_seconds: int


@dataclass(frozen=True)
class DirectionRules:
    """One direction of `behavior` (`scaleUp` or `scaleDown`)."""

    stabilization_window_seconds: int
    select_policy: SelectPolicy
    policies: tuple[RatePolicy, ...]
    tolerance: float = DEFAULT_TOLERANCE


SCALE_UP_DEFAULT = DirectionRules(0, "Max", (RatePolicy("Percent", 100, 15), RatePolicy("Pods", 4, 15)))
SCALE_DOWN_DEFAULT = DirectionRules(300, "Max", (RatePolicy("Percent", 100, 15),))


@dataclass(frozen=True)
class Behavior:
    scale_up: DirectionRules = SCALE_UP_DEFAULT
    scale_down: DirectionRules = SCALE_DOWN_DEFAULT

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, *, where: str = "behavior") -> Behavior:
        """Strictly parse an HPA-style `behavior`; every problem names its field."""
        if values is None:
            return cls()
        if not isinstance(values, Mapping):
            raise InvalidPolicyInput(f"{where} must be an object with scaleUp / scaleDown")
        problems = [f"{where}.{key}: unknown field (scaleUp, scaleDown)" for key in values
                    if key not in ("scaleUp", "scaleDown")]  # fmt: skip
        up = _direction(values.get("scaleUp"), SCALE_UP_DEFAULT, f"{where}.scaleUp", problems)
        down = _direction(values.get("scaleDown"), SCALE_DOWN_DEFAULT, f"{where}.scaleDown", problems)
        if problems:
            raise InvalidPolicyInput("; ".join(problems))
        return cls(up, down)


def _direction(raw: Any, default: DirectionRules, where: str, problems: list[str]) -> DirectionRules:
    if raw is None:
        return default
    if not isinstance(raw, Mapping):
        problems.append(f"{where} must be an object")
        return default
    known = ("stabilizationWindowSeconds", "selectPolicy", "policies", "tolerance")
    problems.extend(f"{where}.{key}: unknown field ({', '.join(known)})" for key in raw if key not in known)
    window = _integer(raw.get("stabilizationWindowSeconds"), default.stabilization_window_seconds,
                      f"{where}.stabilizationWindowSeconds", 0, 3600, problems)  # fmt: skip
    select = raw.get("selectPolicy", default.select_policy)
    if select not in ("Max", "Min", "Disabled"):
        problems.append(f"{where}.selectPolicy must be Max, Min or Disabled, got {select!r}")
        select = default.select_policy
    tolerance = raw.get("tolerance", default.tolerance)
    number = strict_number(tolerance)
    if number is None or not 0.0 <= number < 1.0:
        problems.append(f"{where}.tolerance must be a number in [0, 1), got {tolerance!r}")
        number = default.tolerance
    policies = default.policies
    if "policies" in raw:
        policies = _policies(raw["policies"], f"{where}.policies", problems)
    return DirectionRules(window, select, policies, number)


def _policies(raw: Any, where: str, problems: list[str]) -> tuple[RatePolicy, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= 10:
        problems.append(f"{where} must be a list of 1 to 10 policies")
        return ()
    out = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, Mapping) or set(item) - {"type", "value", "periodSeconds"}:
            problems.append(f"{here} must be {{type, value, periodSeconds}}")
            continue
        kind = item.get("type")
        if kind not in ("Pods", "Percent"):
            problems.append(f"{here}.type must be Pods or Percent, got {kind!r}")
            continue
        value = _integer(item.get("value"), None, f"{here}.value", 1, 100_000, problems)
        period = _integer(item.get("periodSeconds"), None, f"{here}.periodSeconds", 1, 1800, problems)
        if value is not None and period is not None:
            out.append(RatePolicy(kind, value, period))
    return tuple(out)


def _integer(raw: Any, default: int | None, where: str, low: int, high: int, problems: list[str]) -> Any:
    if raw is None:
        if default is None:
            problems.append(f"{where} is required")
        return default
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        problems.append(f"{where} must be an integer in [{low}, {high}], got {raw!r}")
        return default
    return raw


@dataclass(frozen=True)
class ScaleHistory:
    """What happened to the workload recently: the recommendations made (timestamp, replicas wanted)
    and the changes actuated (timestamp, replicas added (+) or removed (-))."""

    recommendations: Sequence[tuple[float, int]] = ()
    changes: Sequence[tuple[float, int]] = ()


@dataclass
class BehaviorResult:
    replicas: int
    effects: list[GuardrailEffect] = field(default_factory=list)


def apply_behavior(
    behavior: Behavior,
    desired: int,
    current: int,
    now: float,
    history: ScaleHistory,
    min_replicas: int = 0,
    max_replicas: int | None = None,
) -> BehaviorResult:
    """The replicas the HPA's behavior allows when `desired` is recommended at `now` (see module doc)."""
    result = BehaviorResult(desired)
    rules = behavior.scale_up if desired > current else behavior.scale_down
    if current > 0 and desired != current and abs(desired / current - 1.0) <= rules.tolerance:
        _effect(result, "behavior_tolerance", current,
                f"{desired} is within tolerance {rules.tolerance:g} of {current}")  # fmt: skip
    stabilized = _stabilize(behavior, result.replicas, current, now, history.recommendations)
    if stabilized != result.replicas:
        _effect(result, "behavior_stabilization", stabilized, "held by the stabilization windows")
    if result.replicas > current:
        limit = max(_up_limit(behavior.scale_up, current, now, history.changes), current)
        if max_replicas is not None:
            limit = min(limit, max_replicas)
        if result.replicas > limit:
            _effect(result, "behavior_scale_up_rate", limit, _rate_reason(behavior.scale_up, "up"))
    elif result.replicas < current:
        limit = min(_down_limit(behavior.scale_down, current, now, history.changes), current)
        limit = max(limit, min_replicas)
        if result.replicas < limit:
            _effect(result, "behavior_scale_down_rate", limit, _rate_reason(behavior.scale_down, "down"))
    return result


def _effect(result: BehaviorResult, name: str, after: int, reason: str) -> None:
    result.effects.append(GuardrailEffect(name, result.replicas, after, reason))
    result.replicas = after


def _stabilize(
    behavior: Behavior, desired: int, current: int, now: float, recommendations: Sequence[tuple[float, int]]
) -> int:
    up_cut = now - behavior.scale_up.stabilization_window_seconds
    down_cut = now - behavior.scale_down.stabilization_window_seconds
    up = min([desired, *(n for ts, n in recommendations if ts > up_cut)])
    down = max([desired, *(n for ts, n in recommendations if ts > down_cut)])
    return min(max(current, up), down)


def _up_limit(rules: DirectionRules, current: int, now: float, changes: Sequence[tuple[float, int]]) -> int:
    if rules.select_policy == "Disabled" or not rules.policies:
        return current
    limits = []
    for policy in rules.policies:
        added = sum(d for ts, d in changes if d > 0 and ts > now - policy.period_seconds)
        start = current - added
        if policy.type == "Pods":
            limits.append(start + policy.value)
        else:
            limits.append(math.ceil(start * (1 + policy.value / 100)))
    return max(limits) if rules.select_policy == "Max" else min(limits)


def _down_limit(rules: DirectionRules, current: int, now: float, changes: Sequence[tuple[float, int]]) -> int:
    if rules.select_policy == "Disabled" or not rules.policies:
        return current
    limits = []
    for policy in rules.policies:
        removed = -sum(d for ts, d in changes if d < 0 and ts > now - policy.period_seconds)
        start = current + removed
        if policy.type == "Pods":
            limits.append(start - policy.value)
        else:
            limits.append(math.floor(start * (1 - policy.value / 100)))
    return min(limits) if rules.select_policy == "Max" else max(limits)


def _rate_reason(rules: DirectionRules, direction: str) -> str:
    shown = ", ".join(f"{p.value}{'%' if p.type == 'Percent' else ' pods'}/{p.period_seconds}s"
                      for p in rules.policies)  # fmt: skip
    return f"scale-{direction} policies ({rules.select_policy}: {shown})"


def hpa_replicas_for_average_value(
    metric_value: float, target_average_value: float, current: int, tolerance: float = DEFAULT_TOLERANCE
) -> int:
    """What the HPA controller asks for on an External metric with an `AverageValue` target (how KEDA's
    metrics-api scaler is read): `ceil(value / target)`, unless the usage ratio
    `value / (target · current)` is within `tolerance` of 1, when it keeps `current`."""
    if target_average_value <= 0:
        raise InvalidPolicyInput("target_average_value must be > 0")
    if current > 0 and abs(metric_value / (target_average_value * current) - 1.0) <= tolerance:
        return current
    return math.ceil(metric_value / target_average_value - 1e-9)
