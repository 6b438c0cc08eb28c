"""How much to trust the forecast: its live skill against persistence, and the persistence controller.

A forecast earns the right to act ahead of the load only where it beats the naive answer "the load stays
where it is". `SkillTracker` scores both at the decision horizon, online and per workload, by the mean
pinball loss over the forecast's quantile levels (a discretised CRPS; a point forecast is scored at the
same levels), exponentially weighted so the score follows regime changes. The loss ratio r = L_forecast /
L_persistence is shrunk towards 1 (no evidence either way) while few outcomes are in, and becomes the
proactive weight w = 1 / (1 + r^2): the inverse-variance weight of two estimates whose errors scale
with their losses (r = 1: half each; a forecast twice as good: 0.8; half as good: 0.2).

`persistence_forecast` is the reactive side: the last observation plus the empirical distribution of
the observed j-step changes, so the reactive controller answers the same risk question as the
proactive one. With too few changes to certify the risk level (split-conformal rank (n + 1)(1 - ε) > n)
there is none, and the policy holds what it has rather than scale in on no evidence.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from policies.distribution import QuantileForecast

PERSISTENCE_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
"""Quantile levels of the persistence forecast when there is no model forecast to take them from."""


def proactive_weight(loss_ratio: float | None) -> float:
    """Weight of the forecast's answer against the reactive one: 1 / (1 + r^2); 1 when not tracked."""
    if loss_ratio is None or not math.isfinite(loss_ratio):
        return 1.0
    return 1.0 / (1.0 + max(loss_ratio, 0.0) ** 2)


def pinball(values: np.ndarray, levels: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Mean pinball loss over levels (last axis) of quantiles `values` against `actual` (broadcast)."""
    diff = actual[..., None] - values
    return np.maximum(levels * diff, (levels - 1.0) * diff).mean(axis=-1)


def persistence_forecast(
    observed: tuple[float, ...] | np.ndarray,
    steps: int,
    epsilon: float,
    levels: tuple[float, ...] = PERSISTENCE_LEVELS,
    step_seconds: float = 60.0,
) -> QuantileForecast | None:
    """Last observation + empirical quantiles of the observed j-step changes (j = 1..steps), or None when
    the changes are too few to certify the 1 - ε level (split-conformal rank)."""
    obs = np.asarray(observed, dtype=float)
    need = math.ceil((1.0 - epsilon) / epsilon)
    if len(obs) - steps < need:
        return None
    last = float(obs[-1])
    tau = np.asarray(levels, dtype=float)
    rows = []
    for j in range(1, steps + 1):
        changes = np.sort(obs[j:] - obs[:-j])
        at = np.ceil(tau * (len(changes) - 1) - 1e-12).astype(int)  # the "higher" order statistic
        rows.append(np.maximum(last + changes[at], 0.0))
    return QuantileForecast(tuple(levels), np.array(rows), step_seconds)


class SkillTracker:
    """Online loss ratio of the forecast against persistence, per workload (see module docstring).

    `record` stores, at a decision made after `seen` observations, each workload's forecast quantiles for
    the next steps (NaN where there is none) and the last observation; `update` scores every record whose
    targets have all been observed since."""

    def __init__(self, workloads: int, half_life: float = 64.0, prior: float = 4.0) -> None:
        self.decay = 0.5 ** (1.0 / half_life)
        self.prior = prior
        self.loss = np.zeros((2, workloads))  # (forecast, persistence) weighted loss sums
        self.count = np.zeros(workloads)
        self.pending: deque[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = deque()

    def record(self, seen: int, levels: np.ndarray, quantiles: np.ndarray, last: np.ndarray) -> None:
        """`quantiles` (W, steps, levels) forecast after `seen` observations; `last` (W,) the latest."""
        self.pending.append((seen, np.asarray(levels, float), quantiles.copy(), last.copy()))

    def update(self, observations: np.ndarray) -> None:
        """Score the records whose targets lie within `observations` (k, W), oldest first."""
        k = len(observations)
        while self.pending and self.pending[0][0] + self.pending[0][2].shape[1] <= k:
            seen, levels, q, last = self.pending.popleft()
            actual = observations[seen : seen + q.shape[1]].T  # (W, steps)
            ok = np.isfinite(q).all(axis=(1, 2))
            if not ok.any():
                continue
            fc = pinball(np.where(np.isfinite(q), q, 0.0), levels, actual).mean(axis=1)
            point = np.broadcast_to(last[:, None, None], q.shape)  # persistence, scored at the same levels
            pers = pinball(point, levels, actual).mean(axis=1)
            mask = ok.astype(float)
            self.loss *= np.where(ok, self.decay, 1.0)
            self.count = self.count * np.where(ok, self.decay, 1.0) + mask
            self.loss[0] += mask * fc
            self.loss[1] += mask * pers

    def ratio(self) -> np.ndarray:
        """(W,) loss ratio forecast / persistence, shrunk to 1 by `prior` pseudo-outcomes of equal loss."""
        n = np.maximum(self.count, 1e-12)
        mean = self.loss.sum(axis=0) / (2.0 * n)
        lf, lp = self.loss[0] + self.prior * mean, self.loss[1] + self.prior * mean
        return np.where(lp > 0, lf / np.maximum(lp, 1e-300), 1.0)

    def outcomes(self) -> np.ndarray:
        """(W,) exponentially weighted count of scored outcomes (how much evidence the ratio has)."""
        return self.count.copy()
