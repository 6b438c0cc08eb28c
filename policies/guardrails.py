"""Guardrails on a replica count as small composable steps (VPA's stacked estimators, HPA's behaviours).

Each step takes the count proposed so far and the context, and returns the count it allows plus a
`GuardrailEffect` when it changed something, so a Decision can say exactly which guardrail moved the
answer and why. `apply_guardrails` runs a chain in order; the default chain ends with min/max so the
bounds always hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from policies.types import GuardrailEffect


@dataclass(frozen=True)
class GuardrailContext:
    """What guardrails may look at: the current count, recent recommendations and the observed need."""

    now_ts: float
    current: int
    recent_recommendations: tuple[tuple[float, int], ...] = ()
    observed_need: int | None = None
    """Replicas the recently *observed* load needed (None when there is no observation)."""
    latest_need: int | None = None
    """Replicas the latest observation alone needs at the target utilisation (None without one)."""


class Guardrail(Protocol):
    def apply(self, proposed: int, ctx: GuardrailContext) -> tuple[int, GuardrailEffect | None]: ...


def _effect(name: str, before: int, after: int, reason: str) -> GuardrailEffect | None:
    return None if before == after else GuardrailEffect(name, before, after, reason)


@dataclass(frozen=True)
class NoScaleInOnForecastAlone:
    """Scale in only as far as the load already observed allows: a forecast dip alone never removes
    replicas the present load needs."""

    def apply(self, proposed: int, ctx: GuardrailContext) -> tuple[int, GuardrailEffect | None]:
        if proposed >= ctx.current:
            return proposed, None
        if ctx.observed_need is None:
            return ctx.current, _effect(
                "no_scale_in_on_forecast_alone",
                proposed,
                ctx.current,
                "no observed load confirms the forecast drop",
            )
        allowed = max(proposed, min(ctx.current, ctx.observed_need))
        reason = f"the observed load still needs {ctx.observed_need} replica(s)"
        return allowed, _effect("no_scale_in_on_forecast_alone", proposed, allowed, reason)


@dataclass(frozen=True)
class ReactiveFloor:
    """Never below the replicas the latest observation needs at the target utilisation (what HPA would
    ask): a forecast that lags a level shift may add headroom but never leaves the present load short."""

    def apply(self, proposed: int, ctx: GuardrailContext) -> tuple[int, GuardrailEffect | None]:
        if ctx.latest_need is None or proposed >= ctx.latest_need:
            return proposed, None
        reason = f"the latest observation needs {ctx.latest_need} replica(s) at the target utilisation"
        return ctx.latest_need, _effect("reactive_floor", proposed, ctx.latest_need, reason)


@dataclass(frozen=True)
class ScaleDownStabilization:
    """Never go below the highest recommendation of the last `window_seconds` (HPA's 300 s default), so
    a load that wobbles around a threshold does not make replicas flap."""

    window_seconds: float = 300.0

    def apply(self, proposed: int, ctx: GuardrailContext) -> tuple[int, GuardrailEffect | None]:
        recent = [n for ts, n in ctx.recent_recommendations if ctx.now_ts - ts <= self.window_seconds]
        if proposed >= ctx.current or not recent:
            return proposed, None
        floor = min(max(recent), ctx.current)
        allowed = max(proposed, floor)
        reason = f"highest recommendation in the last {self.window_seconds:g} s was {max(recent)}"
        return allowed, _effect("scale_down_stabilization", proposed, allowed, reason)


@dataclass(frozen=True)
class StepLimit:
    """At most `max_up` / `max_down` replicas per decision, or that fraction of the current count
    (whichever is larger), so one bad forecast cannot swing a service wildly."""

    max_up: int = 4
    max_up_fraction: float = 1.0
    max_down: int = 2
    max_down_fraction: float = 0.25

    def apply(self, proposed: int, ctx: GuardrailContext) -> tuple[int, GuardrailEffect | None]:
        up = max(self.max_up, math.ceil(ctx.current * self.max_up_fraction))
        down = max(self.max_down, math.floor(ctx.current * self.max_down_fraction))
        allowed = min(max(proposed, ctx.current - down), ctx.current + up)
        reason = f"step limits: +{up} / -{down} per decision from {ctx.current}"
        return allowed, _effect("step_limit", proposed, allowed, reason)


@dataclass(frozen=True)
class MinMax:
    """Keep the count within the workload's configured bounds."""

    minimum: int = 1
    maximum: int | None = None

    def apply(self, proposed: int, ctx: GuardrailContext) -> tuple[int, GuardrailEffect | None]:
        allowed = max(proposed, self.minimum)
        if self.maximum is not None:
            allowed = min(allowed, self.maximum)
        reason = f"bounds [{self.minimum}, {self.maximum if self.maximum is not None else '∞'}]"
        return allowed, _effect("min_max", proposed, allowed, reason)


@dataclass(frozen=True)
class GuardrailChain:
    steps: Sequence[Guardrail] = field(default_factory=tuple)

    def apply(self, proposed: int, ctx: GuardrailContext) -> tuple[int, list[GuardrailEffect]]:
        effects: list[GuardrailEffect] = []
        count = proposed
        for step in self.steps:
            count, effect = step.apply(count, ctx)
            if effect is not None:
                effects.append(effect)
        return count, effects


def default_chain(
    minimum: int,
    maximum: int | None,
    stabilization_seconds: float = 300.0,
    step: StepLimit | None = None,
    reactive_floor: bool = False,
) -> GuardrailChain:
    """The chain the Bayesian policy uses: forecast-alone check, (reactive floor), stabilization, step
    limits, bounds."""
    floor: tuple[Guardrail, ...] = (ReactiveFloor(),) if reactive_floor else ()
    return GuardrailChain(
        (
            NoScaleInOnForecastAlone(),
            *floor,
            ScaleDownStabilization(stabilization_seconds),
            step or StepLimit(),
            MinMax(minimum, maximum),
        )
    )
