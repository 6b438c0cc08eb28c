"""The scaling objective a workload states, and its defaults — written once, read by the service, the
replay, KEDA and the policies alike.

`ScalingSlo.from_mapping` is the one parser of a workload's `slo` settings (the API's `PUT
/v1/workloads/{name}`, a replay config's `scaling` section): numbers must be real finite numbers (not
booleans, not numeric strings) within their ranges, and every problem names its field, so a bad value is
refused when it is written instead of failing a decision later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.types import InvalidPolicyInput

OBJECTIVES = {
    "late_fraction": "at most `max` of the requests over the latency SLO (`max_seconds` when given)",
    "p99_latency": "p99 latency <= `max_seconds` in at least `windows` of the decision windows",
    "p99_ttft": "p99 time to first token <= `max_seconds` in at least `windows` of the decision windows",
}
"""The objectives a workload may state, as SREs write them."""
OBJECTIVE_KEYS = {"objective", "max", "max_seconds", "windows"}


@dataclass(frozen=True)
class Objective:
    """A service-level objective and the violation budget it leaves: the share of requests that may be
    late (`late_fraction`) or of decision windows whose p99 may exceed `max_seconds` (`p99_*`)."""

    metric: str = "late_fraction"
    budget: float = 0.01
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.metric not in OBJECTIVES:
            raise InvalidPolicyInput(
                f"slo.objective: unknown metric {self.metric!r}; known: {', '.join(OBJECTIVES)}"
            )
        if not 0.0 < self.budget < 0.5:
            raise InvalidPolicyInput(
                f"slo.objective: the violation budget must lie in (0, 0.5), got {self.budget:g}"
                + (" (an objective with no violation allowed cannot be met)" if self.budget <= 0 else "")
            )
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise InvalidPolicyInput(f"slo.max_seconds must be > 0, got {self.max_seconds:g}")
        if self.metric != "late_fraction" and self.max_seconds is None:
            raise InvalidPolicyInput(f"slo.objective {self.metric!r} needs max_seconds (the p99 bound)")

    @property
    def per_window(self) -> bool:
        """Whether the budget counts decision windows (p99 objectives) rather than requests."""
        return self.metric != "late_fraction"

    def describe(self) -> str:
        if self.per_window:
            return f"{self.metric} <= {self.max_seconds:g} s in >= {100 * (1 - self.budget):g} % of windows"
        late = f" (over {self.max_seconds:g} s)" if self.max_seconds is not None else ""
        return f"late_fraction <= {100 * self.budget:g} %{late}"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "slo") -> Objective:
        """`{"objective": "late_fraction", "max": 0.01}` or `{"objective": "p99_latency", "max_seconds":
        2, "windows": 0.99}` (flat in the SLO mapping, or nested under `objective` with `metric`)."""
        raw = values.get("objective")
        if isinstance(raw, Mapping):
            values, metric = raw, raw.get("metric")
        else:
            metric = raw
        if not isinstance(metric, str):
            raise InvalidPolicyInput(
                f"{where}.objective: name a metric ({', '.join(OBJECTIVES)}), got {metric!r}"
            )
        if isinstance(raw, Mapping) and (unknown := set(raw) - {"metric", "max", "max_seconds", "windows"}):
            raise InvalidPolicyInput(f"{where}.objective: unknown keys {sorted(unknown)}")
        numbers: dict[str, float | None] = {}
        for key in ("max", "max_seconds", "windows"):
            if values.get(key) is None:
                numbers[key] = None
            elif (number := strict_number(values[key])) is None:
                raise InvalidPolicyInput(f"{where}.{key}: must be a finite number, got {values[key]!r}")
            else:
                numbers[key] = number
        if metric == "late_fraction":
            if numbers["windows"] is not None:
                raise InvalidPolicyInput(f"{where}.windows belongs to the p99 objectives, not late_fraction")
            budget = numbers["max"] if numbers["max"] is not None else cls.budget
        else:
            if numbers["max"] is not None:
                raise InvalidPolicyInput(f"{where}.max belongs to late_fraction; {metric} takes windows")
            windows = numbers["windows"] if numbers["windows"] is not None else 0.99
            if not 0.0 < windows < 1.0:
                raise InvalidPolicyInput(
                    f"{where}.windows must lie in (0, 1), got {windows:g}"
                    + (" (every window within the bound cannot be promised)" if windows >= 1 else "")
                )
            budget = 1.0 - windows
        return cls(metric, float(budget), numbers["max_seconds"])


@dataclass(frozen=True)
class ScalingSlo:
    """How a workload trades replicas against SLA risk."""

    target_utilisation: float = 0.8
    """Share of one replica's capacity the policy plans to use (HPA's target)."""
    epsilon: float = 0.05
    """Chance per decision window the policy accepts that load exceeds the planned capacity."""
    cost_per_replica: float = 1.0
    """Cost of one replica for one decision window (any currency; only ratios matter)."""
    sla_penalty: float = 50.0
    """Cost of one violated window, in the unit of `cost_per_replica`."""
    objective: Objective = field(default_factory=Objective)
    """The objective whose violation budget the policy spends, tuning its risk level online."""
    epsilon_override: bool = False
    """`epsilon` was stated: an expert fixes the risk level, and the objective does not tune it."""

    def __post_init__(self) -> None:
        problems = [p for name in NUMBERS if (p := _range_problem(name, float(getattr(self, name))))]
        if problems:
            raise InvalidPolicyInput("; ".join(problems))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return NUMBERS

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, *, where: str = "slo") -> ScalingSlo:
        """Strictly parse the SLO settings in `values`; absent keys take the defaults, other keys belong
        to the caller (a replay's `scaling` section holds more) and are left alone."""
        values = values or {}
        problems: list[str] = []
        parsed: dict[str, float] = {}
        for key in cls.field_names():
            if key not in values or values[key] is None:
                continue
            number = strict_number(values[key])
            if number is None:
                problems.append(f"{where}.{key}: must be a finite number, got {values[key]!r}")
            elif problem := _range_problem(key, number):
                problems.append(f"{where}.{problem}")
            else:
                parsed[key] = number
        if problems:
            raise InvalidPolicyInput("; ".join(problems))
        objective = (
            Objective.from_mapping(values, where) if values.get("objective") is not None else Objective()
        )
        if values.get("objective") is None and (stray := OBJECTIVE_KEYS & set(values) - {"objective"}):
            raise InvalidPolicyInput(
                f"{where}: {sorted(stray)} need an objective (one of {', '.join(OBJECTIVES)})"
            )
        return cls(**parsed, objective=objective, epsilon_override="epsilon" in parsed)


NUMBERS = ("target_utilisation", "epsilon", "cost_per_replica", "sla_penalty")
"""The numeric settings of `ScalingSlo`, each range-checked."""


def strict_number(value: object) -> float | None:
    """`value` as a float when it is a real, finite number (bools and strings are not), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _range_problem(name: str, value: float) -> str | None:
    if name == "target_utilisation" and not 0.0 < value <= 1.0:
        return f"target_utilisation must lie in (0, 1], got {value:g}"
    if name == "epsilon" and not 0.0 < value < 1.0:
        return f"epsilon must lie in (0, 1), got {value:g}"
    if name in ("cost_per_replica", "sla_penalty") and not (value >= 0.0 and math.isfinite(value)):
        return f"{name} must be a finite number >= 0, got {value:g}"
    return None


DEFAULT_SLO = ScalingSlo()
