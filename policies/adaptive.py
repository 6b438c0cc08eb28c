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

from dataclasses import dataclass

from scipy import stats


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
    posterior = stats.beta(a0 + violations, b0 + windows - violations)
    mean = float(posterior.mean())
    above = float(posterior.sf(target_epsilon))
    if windows == 0:
        return AdaptedRisk(target_epsilon, penalty, mean, above, "no outcomes observed yet: target ε")
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
