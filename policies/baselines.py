"""Scaling baselines with the same contract, to measure the Bayesian policy against (and to fall back to).

* `static_peak`: provision for the peak load (configured, or the highest seen so far) and never move.
* `hpa`: the Kubernetes Horizontal Pod Autoscaler's algorithm on the last observed load —
  desired = ceil(current · metric / target) with a 0.1 tolerance, a 300 s scale-down stabilization
  window (the highest recommendation of the window wins) and the default rate policies (scale up by at
  most max(100 %, 4 pods) per 15 s period, scale down by up to 100 %).
* `vpa_percentile`: VPA's recommender idea applied to replicas: a decaying-weight percentile of the
  observed load (half-life in observations) plus a safety margin.
* `holt_winters_hpa`: predictive HPA — Holt-Winters (statsmodels) over the observed load, size for the
  largest predicted value of the next window, never below what HPA wants now.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from policies.scaling import ScalingInput, one_choice_decision
from policies.types import BasePolicy, Decision, GuardrailEffect, register

HPA_TOLERANCE = 0.1
HPA_SCALE_DOWN_WINDOW_SECONDS = 300.0
HPA_PERIOD_SECONDS = 15.0


def _decision(
    inputs: ScalingInput,
    policy: str,
    replicas: int,
    wanted: int,
    note: str,
    guardrails: list[GuardrailEffect] | None = None,
    fallback: str | None = None,
    **details: object,
) -> Decision:
    replicas = max(replicas, inputs.min_replicas)
    if inputs.max_replicas is not None:
        replicas = min(replicas, inputs.max_replicas)
    return one_choice_decision(
        inputs, policy, replicas, wanted, note, guardrails or [], fallback, dict(details)
    )


@register("static_peak", "scaling")
class StaticPeakPolicy(BasePolicy):
    """Provision for the peak: `peak_load` if configured, else the highest load observed so far."""

    def __init__(self, peak_load: float | None = None) -> None:
        self.peak_load = peak_load

    def decide(self, inputs: ScalingInput) -> Decision:
        seen = max(inputs.observed_load) if inputs.observed_load else 0.0
        peak = self.peak_load if self.peak_load is not None else seen
        wanted = max(inputs.replicas_for(peak), inputs.current_replicas if self.peak_load is None else 0)
        return _decision(inputs, self.name, wanted, wanted, f"peak {peak:g}", peak_load=peak)


def hpa_desired(inputs: ScalingInput) -> int:
    """HPA's raw recommendation from the last observed load (tolerance applied)."""
    if not inputs.observed_load:
        return inputs.current_replicas
    load = inputs.observed_load[-1]
    if inputs.current_replicas == 0:
        return inputs.replicas_for(load)
    ratio = (load / inputs.current_replicas) / inputs.usable_capacity
    if abs(ratio - 1.0) <= HPA_TOLERANCE:
        return inputs.current_replicas
    return max(math.ceil(inputs.current_replicas * ratio - 1e-9), 0)


def hpa_behaviour(inputs: ScalingInput, desired: int) -> tuple[int, list[GuardrailEffect]]:
    """HPA's default behaviour: scale-down stabilization over 300 s, scale-up rate limits per 15 s."""
    effects: list[GuardrailEffect] = []
    current = inputs.current_replicas
    recent = [
        n for ts, n in inputs.recent_recommendations if inputs.now_ts - ts <= HPA_SCALE_DOWN_WINDOW_SECONDS
    ]
    out = desired
    if desired < current and recent:
        out = min(max([desired, *recent]), current)
        if out != desired:
            effects.append(
                GuardrailEffect(
                    "hpa_scale_down_stabilization", desired, out, "highest recommendation of the last 300 s"
                )
            )
    if out > current:
        last = max((ts for ts, _ in inputs.recent_recommendations), default=None)
        periods = 1 if last is None else max(int((inputs.now_ts - last) // HPA_PERIOD_SECONDS), 1)
        limit = current
        for _ in range(periods):
            limit = max(limit * 2, limit + 4)
        if out > limit:
            effects.append(GuardrailEffect("hpa_scale_up_rate", out, limit, "max(100 %, 4 pods) per 15 s"))
            out = limit
    return out, effects


@register("hpa", "scaling")
class HpaPolicy(BasePolicy):
    """Kubernetes HPA (v2 defaults) on the observed load per replica vs the target utilisation."""

    def decide(self, inputs: ScalingInput) -> Decision:
        desired = hpa_desired(inputs)
        replicas, effects = hpa_behaviour(inputs, desired)
        fallback = None if inputs.observed_load else "no observed load: HPA keeps the current count"
        return _decision(inputs, self.name, replicas, desired, "HPA recommendation", effects, fallback)


def decaying_percentile(values: np.ndarray, level: float, half_life: float) -> float:
    """Weighted percentile where an observation `half_life` steps older counts half as much (VPA)."""
    age = np.arange(len(values))[::-1]
    weights = 0.5 ** (age / half_life)
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, level * cumulative[-1]))
    return float(values[order][min(index, len(values) - 1)])


@register("vpa_percentile", "scaling")
class VpaPercentilePolicy(BasePolicy):
    """Replicas for a decaying-weight percentile of the observed load plus a safety margin."""

    def __init__(self, level: float = 0.9, half_life: float = 1440.0, margin: float = 0.15) -> None:
        self.level, self.half_life, self.margin = level, half_life, margin

    def decide(self, inputs: ScalingInput) -> Decision:
        if not inputs.observed_load:
            return _decision(
                inputs,
                self.name,
                inputs.current_replicas,
                inputs.current_replicas,
                "no history",
                fallback="no observed load: keeps the current count",
            )
        target = decaying_percentile(np.asarray(inputs.observed_load), self.level, self.half_life)
        wanted = inputs.replicas_for(target * (1.0 + self.margin))
        return _decision(
            inputs,
            self.name,
            wanted,
            wanted,
            f"p{self.level * 100:g} {target:g} + margin",
            percentile_load=target,
            margin=self.margin,
        )


@register("holt_winters_hpa", "scaling")
class HoltWintersPolicy(BasePolicy):
    """Predictive HPA: Holt-Winters forecast of the next window, never below HPA's current answer."""

    def __init__(self, season_length: int = 60, horizon: int = 5, min_history: int = 12) -> None:
        self.season_length, self.horizon, self.min_history = season_length, horizon, min_history

    def decide(self, inputs: ScalingInput) -> Decision:
        desired_now = hpa_desired(inputs)
        history = np.asarray(inputs.observed_load, dtype=float)
        if len(history) < self.min_history:
            replicas, effects = hpa_behaviour(inputs, desired_now)
            return _decision(
                inputs,
                self.name,
                replicas,
                desired_now,
                "HPA (short history)",
                effects,
                fallback=f"{len(history)} observations; Holt-Winters needs {self.min_history}",
            )
        predicted = self._predict(history)
        wanted = max(inputs.replicas_for(float(predicted.max())), desired_now)
        replicas, effects = hpa_behaviour(inputs, wanted)
        return _decision(
            inputs,
            self.name,
            replicas,
            wanted,
            "Holt-Winters peak of next window",
            effects,
            predicted=predicted.round(6).tolist(),
        )

    def _predict(self, history: np.ndarray) -> np.ndarray:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        seasonal = len(history) >= 2 * self.season_length and self.season_length > 1
        model = ExponentialSmoothing(
            history,
            trend="add",
            seasonal="add" if seasonal else None,
            seasonal_periods=self.season_length if seasonal else None,
            initialization_method="estimated",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = model.fit()
        return np.maximum(np.asarray(fitted.forecast(self.horizon), dtype=float), 0.0)
