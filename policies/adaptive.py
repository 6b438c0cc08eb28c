"""Adapt the risk budget ε and the SLA penalty from observed violations (a Beta posterior).

The scaling policy promises P(overload) ≤ ε per decision window. Outcomes report how many windows were
observed and how many violated the SLO. With a Beta prior centred on ε (worth `prior_strength` windows),
the posterior of the true violation rate tells whether the promise is being kept:

* if P(rate > ε | data) is high (the forecast under-covers), tighten: ε_eff = ε · ε / E[rate], and raise
  the penalty by the same factor, so the policy buys more headroom;
* if P(rate < ε | data) is high (it over-provisions), relax ε_eff towards ε · 1.5 at most;
* otherwise keep ε. ε_eff is bounded to [ε/10, 2ε] so a burst of bad luck cannot freeze the cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True)
class ViolationHistory:
    """Observed decision windows and how many of them violated the SLO."""

    windows: int = 0
    violations: int = 0

    def __post_init__(self) -> None:
        if self.windows < 0 or self.violations < 0 or self.violations > self.windows:
            raise ValueError(f"need 0 <= violations <= windows, got {self.violations}/{self.windows}")


@dataclass(frozen=True)
class AdaptedRisk:
    epsilon: float
    penalty: float
    posterior_mean: float
    p_rate_above_target: float
    reason: str


def _beta_sf(a: float, b: float, x: float) -> float:
    """P(X > x) for X ~ Beta(a, b): the regularized incomplete beta function (what `stats.beta(a,
    b).sf` computes, without building a frozen distribution on every decision)."""
    return float(special.betaincc(a, b, x))


def adapt_risk(
    target_epsilon: float,
    penalty: float,
    history: ViolationHistory | None,
    prior_strength: float = 20.0,
    confidence: float = 0.9,
) -> AdaptedRisk:
    """ε and penalty to use now, given the target ε and the observed violations."""
    if not 0.0 < target_epsilon < 1.0:
        raise ValueError(f"epsilon must lie in (0, 1), got {target_epsilon}")
    a0 = target_epsilon * prior_strength
    b0 = (1.0 - target_epsilon) * prior_strength
    windows = history.windows if history else 0
    violations = history.violations if history else 0
    if windows == 0:  # the prior alone: its mean is ε
        above = _beta_sf(a0, b0, target_epsilon)
        return AdaptedRisk(target_epsilon, penalty, target_epsilon, above, "no outcomes yet: target ε")
    a, b = a0 + violations, b0 + windows - violations
    mean = a / (a + b)
    above = _beta_sf(a, b, target_epsilon)
    if above >= confidence:
        factor = min(mean / target_epsilon, 10.0)
        eps = max(target_epsilon / factor, target_epsilon / 10.0)
        reason = f"violations run above ε (P={above:.2f}): tightened ε and raised the penalty x{factor:.2f}"
        return AdaptedRisk(eps, penalty * factor, mean, above, reason)
    if 1.0 - above >= confidence:
        eps = min(target_epsilon * min(target_epsilon / max(mean, 1e-9), 1.5), 2.0 * target_epsilon)
        reason = f"violations run below ε (P={1 - above:.2f}): relaxed ε"
        return AdaptedRisk(eps, penalty, mean, above, reason)
    return AdaptedRisk(target_epsilon, penalty, mean, above, "violation rate consistent with ε")


BUDGET_STEP = 0.05
"""ACI step gamma: change of log ε per window, per budget's worth of violations."""
EPSILON_RANGE = (1e-3, 0.5)
"""Where the tuned ε stays: below 1e-3 a forecast's tail is extrapolation beyond its outermost quantile
(0.01 or 0.05 for the registered forecasters) and buys replicas that do not buy lateness; above 0.5 the
policy would plan below the median."""


class BudgetController:
    """The risk level ε that spends a violation budget at the least cost, per workload, online.

    Adaptive conformal inference (Gibbs & Candès, 2021) on log ε: after each decision window with
    violation measure v (the late share of its requests, or 1 when a p99 objective missed the window)
    and weight m (its requests relative to the mean, or 1),

        log ε ← clip(log ε + gamma · m · (budget - v) / budget)

    so a window under budget relaxes ε a little and one over it tightens ε in proportion to the excess.
    While ε stays inside its range, the sum of updates is bounded, so the long-run violation rate
    converges to the budget at rate O(1 / (gamma T)), whatever the forecast's calibration; clipping only
    binds where the budget is out of reach (ε at the floor) or cannot be spent (at the ceiling)."""

    def __init__(
        self,
        budget: float,
        workloads: int,
        epsilon: float = 0.05,
        step: float = BUDGET_STEP,
        bounds: tuple[float, float] = EPSILON_RANGE,
    ) -> None:
        if not 0.0 < budget < 1.0:
            raise ValueError(f"the violation budget must lie in (0, 1), got {budget}")
        self.budget, self.step = budget, step
        self.bounds = (math.log(bounds[0]), math.log(bounds[1]))
        # the state may run below the ε it hands out, so a burst's debt is paid off, not forgotten at
        # the floor; only a budget out of reach at the floor for long (1000x below it) is let go
        self.state_bounds = (self.bounds[0] - math.log(1000.0), self.bounds[1])
        self.log_eps = np.full(workloads, min(max(math.log(epsilon), self.bounds[0]), self.bounds[1]))
        self.windows = np.zeros(workloads)
        self.spent = np.zeros(workloads)

    def update(self, violation: np.ndarray, weight: np.ndarray) -> None:
        """One finished window per workload: `violation` in [0, 1], `weight` >= 0 (0: no requests)."""
        v, m = np.asarray(violation, float), np.asarray(weight, float)
        step = self.step * m * (self.budget - v) / self.budget
        self.log_eps = np.clip(self.log_eps + step, *self.state_bounds)
        self.windows += m
        self.spent += m * v

    @property
    def epsilon(self) -> np.ndarray:
        """The risk level to decide with, per workload (the state, within `EPSILON_RANGE`)."""
        return np.exp(np.clip(self.log_eps, *self.bounds))

    def rate(self) -> np.ndarray:
        """The (weighted) violation rate so far, per workload (0 before any window)."""
        return np.where(self.windows > 0, self.spent / np.maximum(self.windows, 1e-12), 0.0)


def budget_epsilon(budget: float, history: ViolationHistory | None, epsilon: float = 0.05) -> float:
    """`BudgetController`'s ε replayed from counts alone (windows, violated windows), for a caller that
    keeps no state between decisions (the service): the same update, summed, without the per-window
    clipping (the counts do not say in which order the windows came)."""
    lo, hi = EPSILON_RANGE
    if history is None or history.windows == 0:
        return min(max(epsilon, lo), hi)
    drift = BUDGET_STEP * (history.windows * budget - history.violations) / budget
    return float(min(max(math.exp(math.log(epsilon) + drift), lo), hi))
