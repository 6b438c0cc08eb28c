"""Doubly-robust off-policy evaluation of mitigation policies on held-out history, and the strictness
knobs it chooses.

With cross-fitted outcome models mu_a(x) and logging propensities p_a(x) (fitted without the event's
fold), the DR score of action a on event i is

    G[i, a] = mu_a(x_i) + 1{A_i = a} (Y_i - mu_a(x_i)) / max(p_a(x_i), clip)

and the mean of G[i, pi(x_i)] estimates the expected downtime of policy pi; the logged policy's is the
mean of Y (it is what happened). The saving is 1 - V(pi) / V(logged), a ratio of means, with a delta-method
interval — scale-free, so it reads the same for minutes, VM-minutes or seconds.

Strictness decides per event whether the learned choice replaces the fallback (the fleet's practice or a
declared rule). Every knob is relative: overlap (both actions' propensity), support (the share of history
in the event's labelled-context cell), gain (relative to the fallback's expected downtime) and, for
learners with standard errors, the interval level (the gain must exceed z standard errors).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

PROPENSITY_CLIP = 0.01
"""Floor of the propensity in the DR weights (a weight never exceeds 100)."""
Z90 = NormalDist().inv_cdf(0.95)


@dataclass(frozen=True)
class Strictness:
    """When the learned choice may replace the fallback: all must hold. `z` 0 means no interval test."""

    min_propensity: float = 0.0
    min_profile_share: float = 0.0
    min_relative_gain: float = 0.0
    z: float = 0.0

    @property
    def level(self) -> float | None:
        """The one-sided confidence level of the interval test (None: no test)."""
        return None if self.z <= 0 else round(NormalDist().cdf(self.z), 3)

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "interval_level": self.level}


def strictness_grid(with_intervals: bool) -> list[Strictness]:
    """The settings OPE chooses among (relative thresholds only)."""
    zs = (0.0, 0.84, 1.28, 1.64) if with_intervals else (0.0,)
    return [
        Strictness(p, s, g, z)
        for p in (0.0, 0.02, 0.05, 0.1)
        for s in (0.0, 0.01)
        for g in (0.0, 0.05, 0.15, 0.3)
        for z in zs
    ]


GATE_CODES = ("thin_overlap", "thin_support", "small_gain", "crosses_zero")


def gate(
    pred: np.ndarray,
    fallback: np.ndarray,
    propensity: np.ndarray,
    share: np.ndarray,
    stderr: np.ndarray | None,
    s: Strictness,
) -> tuple[np.ndarray, np.ndarray]:
    """(action index per event, refusal code index per event: -1 accepted or no change, else into
    `GATE_CODES`)."""
    rows = np.arange(len(pred))
    choice = pred.argmin(axis=1)
    gain = pred[rows, fallback] - pred[rows, choice]
    scale = np.maximum(np.abs(pred[rows, fallback]), 1e-12)
    code = np.full(len(pred), -1)
    overlap = np.minimum(propensity[rows, choice], propensity[rows, fallback])
    checks = [
        overlap < s.min_propensity,
        share < s.min_profile_share,
        gain / scale < s.min_relative_gain,
        (gain <= s.z * stderr) if (stderr is not None and s.z > 0) else np.zeros(len(pred), dtype=bool),
    ]
    differs = choice != fallback
    for j, refused in enumerate(checks):
        code = np.where(differs & (code < 0) & refused, j, code)
    action = np.where(differs & (code < 0), choice, fallback)
    return action, code


def dr_scores(y: np.ndarray, t: np.ndarray, mu: np.ndarray, p: np.ndarray) -> np.ndarray:
    """G[i, a]: the doubly-robust score of every action on every event (see the module docstring)."""
    rows = np.arange(len(y))
    out = mu.copy()
    out[rows, t] += (y - mu[rows, t]) / np.maximum(p[rows, t], PROPENSITY_CLIP)
    return out


@dataclass(frozen=True)
class Saving:
    """Estimated cut in downtime against the logged policy (a fraction; negative: worse) with its 90 %
    interval, the two policy values (the history's downtime units) and the events it rests on."""

    saving: float
    lower: float
    upper: float
    policy_value: float
    logged_value: float
    n: int

    @property
    def beats_logged(self) -> bool:
        return self.lower > 0

    def statement(self) -> str:
        text = (
            f"on your history this policy cuts downtime by {100 * self.saving:.1f} % "
            f"(90 % CI [{100 * self.lower:.1f}, {100 * self.upper:.1f}]) against your current practice"
        )
        if self.lower <= 0 <= self.upper:
            text += "; warning: the interval includes zero, the saving is not established"
        return text

    def describe(self) -> dict[str, Any]:
        return {
            "saving": round(self.saving, 4),
            "ci90": [round(self.lower, 4), round(self.upper, 4)],
            "policy_value": round(self.policy_value, 4),
            "logged_value": round(self.logged_value, 4),
            "n_events": self.n,
            "includes_zero": bool(self.lower <= 0 <= self.upper),
            "statement": self.statement(),
        }


def saving(gamma: np.ndarray, y: np.ndarray) -> Saving:
    """1 - mean(gamma) / mean(y) with a delta-method 90 % interval (gamma: DR score of the policy's
    action per event, y: the logged downtime)."""
    n = len(y)
    logged = float(y.mean())
    if n < 2 or not logged > 0:
        return Saving(0.0, -np.inf, np.inf, float(gamma.mean()) if n else 0.0, logged, n)
    ratio = float(gamma.mean()) / logged
    influence = (gamma - ratio * y) / logged
    se = float(influence.std(ddof=1) / np.sqrt(n))
    cut = 1.0 - ratio
    # downtime is never negative, so no policy saves more than all of it
    return Saving(cut, cut - Z90 * se, min(cut + Z90 * se, 1.0), float(gamma.mean()), logged, n)


@dataclass(frozen=True)
class Candidate:
    """One (learner, strictness) setting and its held-out estimate."""

    learner: str
    strictness: Strictness
    estimate: Saving
    replaced: float
    """Share of events where the learned choice replaced the fallback."""


def select(candidates: Iterable[Candidate]) -> Candidate | None:
    """The setting with the best estimated downtime whose lower bound still beats the logged policy
    (None: none does, the fallback decides everywhere)."""
    good = [c for c in candidates if c.estimate.beats_logged]
    return max(good, key=lambda c: c.estimate.saving) if good else None
