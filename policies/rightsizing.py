"""Vertical right-sizing (VPA-style): per-replica CPU / memory requests = a target quantile + a margin.

With a forecast of per-replica usage the target is the largest `level` quantile over the next window
(predictive: it sizes for tomorrow's peak hour, not yesterday's); without one it falls back to VPA's
decaying-histogram percentile of observed usage. Lower / upper bounds follow VPA (the median and a high
quantile) so an operator sees how far the current request is from reasonable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from policies.baselines import decaying_percentile
from policies.distribution import QuantileForecast
from policies.types import BasePolicy, Candidate, Decision, InvalidPolicyInput, register


@dataclass(frozen=True)
class ResourceUsage:
    """One resource of one replica: observed usage (oldest first), an optional forecast, the request."""

    observed: tuple[float, ...] = ()
    forecast: QuantileForecast | None = None
    current_request: float | None = None


@dataclass(frozen=True)
class RightsizingInput:
    workload: str
    resources: dict[str, ResourceUsage] = field(default_factory=dict)
    """By resource name, e.g. {"cpu": ..., "memory": ...} (units are the series' own)."""

    def __post_init__(self) -> None:
        if not self.resources:
            raise InvalidPolicyInput("resources must name at least one resource (e.g. cpu, memory)")
        for name, usage in self.resources.items():
            if any(not math.isfinite(v) or v < 0 for v in usage.observed):
                raise InvalidPolicyInput(f"resources.{name}.observed must be finite, non-negative numbers")


@register("rightsizing", "rightsizing")
class RightsizingPolicy(BasePolicy):
    """Request = target quantile (forecast window max, else decaying percentile) x (1 + margin)."""

    def __init__(
        self,
        levels: dict[str, float] | None = None,
        margin: float = 0.15,
        half_life: float = 1440.0,
        lower_level: float = 0.5,
        upper_level: float = 0.95,
    ) -> None:
        self.levels = {"cpu": 0.9, "memory": 0.95, **(levels or {})}
        self.margin, self.half_life = margin, half_life
        self.lower_level, self.upper_level = lower_level, upper_level

    def decide(self, inputs: RightsizingInput) -> Decision:
        params: dict[str, dict[str, float | None]] = {}
        candidates: list[Candidate] = []
        forecast: dict[str, object] = {}
        fallbacks: list[str] = []
        for name, usage in sorted(inputs.resources.items()):
            level = self.levels.get(name, 0.9)
            if usage.forecast is not None:
                target = usage.forecast.window_quantile(level)
                lower = usage.forecast.window_quantile(self.lower_level)
                upper = usage.forecast.window_quantile(self.upper_level)
                forecast[name] = usage.forecast.summary()
            elif usage.observed:
                values = np.asarray(usage.observed, dtype=float)
                target = decaying_percentile(values, level, self.half_life)
                lower = decaying_percentile(values, self.lower_level, self.half_life)
                upper = decaying_percentile(values, self.upper_level, self.half_life)
                fallbacks.append(f"{name}: no forecast, used the observed decaying percentile")
            else:
                fallbacks.append(f"{name}: no forecast and no observations, request unchanged")
                params[name] = {"request": usage.current_request, "lower": None, "upper": None}
                continue
            request = target * (1.0 + self.margin)
            params[name] = {
                "request": request,
                "lower": lower,
                "upper": max(upper * (1 + self.margin), request),
            }
            change = None if usage.current_request in (None, 0) else request / usage.current_request - 1.0
            candidates.append(
                Candidate(
                    "set_request",
                    {"resource": name, "request": request},
                    request,
                    1.0 - level,
                    note=f"q{level:g} {target:g} + {self.margin:.0%}"
                    + (f"; {change:+.0%} vs current" if change is not None else ""),
                )
            )
        changed = any(
            usage.current_request is None
            or params[name]["request"] is None
            or abs((params[name]["request"] or 0.0) / usage.current_request - 1.0) > 0.1
            for name, usage in inputs.resources.items()
            if usage.current_request not in (0,)
        )
        return Decision(
            kind="rightsizing",
            target=inputs.workload,
            action="set_requests" if changed else "hold",
            params=params,
            policy=self.name,
            forecast=forecast,
            candidates=candidates,
            fallback_reason="; ".join(fallbacks) or None,
            details={"margin": self.margin, "levels": self.levels},
        )
