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
from dataclasses import asdict, dataclass, fields
from typing import Any

from policies.types import InvalidPolicyInput


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

    def __post_init__(self) -> None:
        problems = [p for name, value in asdict(self).items() if (p := _range_problem(name, value))]
        if problems:
            raise InvalidPolicyInput("; ".join(problems))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

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
        return cls(**parsed)


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
