"""Interval calibration that cannot move the centre: shared by the conformal wrappers and `auto`.

Three guarantees every calibrated forecast here keeps:

* the median (level 0.5, or the centre between the innermost levels) is exactly the base model's;
* quantiles stay monotone without re-sorting (a re-sort would let a widened lower quantile overtake the
  median and so change it): levels below the centre never exceed it, levels above never fall below it,
  and each side is made monotone outward from the centre;
* a unit that cannot be negative gets no negative quantile or mean (decided from the training data: every
  training value >= 0, unless the caller says otherwise).

`SideScaler` is the calibration of `auto`: each quantile level's distance from the median is multiplied by
a factor learnt on validation residuals so that the level is hit as often as it claims (per horizon step,
shrunk towards the factor pooled over all steps when a step has few residuals), with the factor bounded
so no validation window, however adversarial, can make an interval infinite or collapse a wide one to a
point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


def centre_of(q: np.ndarray, levels: Sequence[float] | np.ndarray) -> np.ndarray:
    """The distribution's centre per row: the 0.5 quantile, or the interpolated median of the base."""
    lv = np.asarray(levels, dtype=float)
    at = np.flatnonzero(np.isclose(lv, 0.5))
    if len(at):
        return q[..., int(at[0])].copy()
    below = np.flatnonzero(lv < 0.5)
    above = np.flatnonzero(lv > 0.5)
    if not len(below):
        return q[..., int(above[0])].copy()
    if not len(above):
        return q[..., int(below[-1])].copy()
    i, j = int(below[-1]), int(above[0])
    frac = (0.5 - lv[i]) / (lv[j] - lv[i])
    return q[..., i] + frac * (q[..., j] - q[..., i])


def keep_centre(q: np.ndarray, levels: Sequence[float], centre: np.ndarray) -> np.ndarray:
    """Quantiles (..., K) with the centre level set to `centre` and both sides monotone away from it."""
    lv = np.asarray(levels, dtype=float)
    out = np.array(q, dtype=float, copy=True)
    mid = np.isclose(lv, 0.5)
    out[..., mid] = centre[..., None]
    lo = np.flatnonzero((lv < 0.5) & ~mid)
    hi = np.flatnonzero((lv > 0.5) & ~mid)
    if len(lo):
        side = np.minimum(out[..., lo], centre[..., None])
        # walking outward (towards level 0) each quantile is at most the one inside it
        out[..., lo] = np.minimum.accumulate(side[..., ::-1], axis=-1)[..., ::-1]
    if len(hi):
        side = np.maximum(out[..., hi], centre[..., None])
        out[..., hi] = np.maximum.accumulate(side, axis=-1)
    return out


def clip_nonnegative(q: np.ndarray, mean: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Floor quantiles and means of the flagged rows at zero (a count or a utilisation is never < 0)."""
    if rows.any():
        q = q.copy()
        mean = mean.copy()
        q[rows] = np.maximum(q[rows], 0.0)
        mean[rows] = np.maximum(mean[rows], 0.0)
    return q, mean


@dataclass
class SideScaler:
    """Median-preserving recalibration: level tau's distance from the median times a learnt factor.

    For a level below the median the factor is the (1 - tau) quantile of `(median - y) / (median - q_tau)`
    over validation residuals, so that after scaling y falls below the new q_tau a fraction tau of the
    time; symmetrically above. With few residuals the factor is shrunk towards 1 (in log space, weight
    n / (n + prior_rows)), so a short validation window cannot over-narrow or over-widen; `bounds`
    keeps every factor finite and positive.
    """

    levels: tuple[float, ...]
    bounds: tuple[float, float] = (0.25, 4.0)
    min_per_step: int = 60
    prior_rows: int = 20
    factors: np.ndarray = field(default_factory=lambda: np.ones((1, 0)))

    def fit(self, y: np.ndarray, q: np.ndarray, step: np.ndarray, floor: np.ndarray) -> SideScaler:
        """Learn factors (steps, K) from observations y (n,), quantiles q (n, K), horizon steps (n,).

        `floor` (n,) is the smallest distance treated as non-zero (a small fraction of each row's scale),
        so a zero-width base interval yields a bounded, not an infinite, factor.
        """
        lv = np.asarray(self.levels)
        steps = int(step.max()) if len(step) else 1
        pooled = self._factors(y, q, floor, lv)
        out = np.tile(pooled, (steps, 1))
        for h in range(1, steps + 1):
            rows = step == h
            n = int(rows.sum())
            if n == 0:
                continue
            # each step's own factor, shrunk towards the pooled one by how few residuals it has
            own = self._factors(y[rows], q[rows], floor[rows], lv, shrink=False)
            weight = n / (n + self.min_per_step)
            out[h - 1] = np.exp(weight * np.log(own) + (1 - weight) * np.log(pooled))
        self.factors = out
        return self

    def _factors(
        self, y: np.ndarray, q: np.ndarray, floor: np.ndarray, lv: np.ndarray, shrink: bool = True
    ) -> np.ndarray:
        med = centre_of(q, lv)
        f = np.ones(len(lv))
        if len(y) == 0:
            return f
        for k, tau in enumerate(lv):
            if np.isclose(tau, 0.5):
                continue
            if tau < 0.5:
                dist = np.maximum(med - q[:, k], floor)
                score = (med - y) / dist
                level = 1.0 - tau
            else:
                dist = np.maximum(q[:, k] - med, floor)
                score = (y - med) / dist
                level = tau
            f[k] = float(np.quantile(score, level))
        f = np.clip(f, *self.bounds)
        return np.exp(np.log(f) * len(y) / (len(y) + self.prior_rows)) if shrink else f

    def apply(self, q: np.ndarray, step: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """Rescaled quantiles (n, K) for rows at horizon `step` (n,); the median is untouched."""
        if self.factors.shape[1] == 0:
            return q
        med = centre_of(q, self.levels)
        f = self.factors[np.clip(step, 1, len(self.factors)) - 1]
        lv = np.asarray(self.levels)
        below = lv < 0.5
        dist = np.where(below[None, :], med[:, None] - q, q - med[:, None])
        dist = np.maximum(dist, 0.0)
        # a zero-width base side still opens up when validation says it must (bounded by the floor)
        widen = np.where((dist < floor[:, None]) & (f > 1.0), floor[:, None], dist)
        new = np.where(below[None, :], med[:, None] - f * widen, med[:, None] + f * widen)
        new[:, np.isclose(lv, 0.5)] = med[:, None]
        return keep_centre(new, self.levels, med)


STRENGTHS = (1.0, 0.5, 0.0)  # how much of the learnt calibration is applied; ties keep the most


def calibration_strength(
    levels: Sequence[float],
    y: np.ndarray,
    q: np.ndarray,
    step: np.ndarray,
    floor: np.ndarray,
    late: np.ndarray,
    row_weight: np.ndarray,
    row_loss: Callable[[np.ndarray, np.ndarray, Sequence[float]], np.ndarray],
) -> tuple[float, dict[str, float]]:
    """How much of a `SideScaler`'s correction to apply (its factors ** strength), chosen out of sample.

    Factors are learnt on the earlier rows (`~late`), applied at every strength of `STRENGTHS` to the
    later rows, and scored there by `row_loss(y, q, levels)` weighted by `row_weight` (e.g. CRPS over each
    series' spread). Widths learnt on a short window need not carry over to what follows (a calm window
    narrows intervals a busy one needs); the later rows say whether they did. Returns the strength (1.0
    when there are no earlier or no later rows) and the later rows' loss at every strength tried.
    """
    early = ~late
    if not early.any() or not late.any():
        return 1.0, {}
    probe = SideScaler(tuple(levels)).fit(y[early], q[early], step[early], floor[early])
    learnt = probe.factors.copy()
    losses = {}
    for strength in STRENGTHS:
        probe.factors = learnt**strength
        shaped = probe.apply(q[late], step[late], floor[late])
        loss = row_loss(y[late], shaped, levels) * row_weight[late]
        losses[f"{strength:g}"] = float(loss.sum() / row_weight[late].sum())
    return min(STRENGTHS, key=lambda s: losses[f"{s:g}"] - 1e-12 * s), losses
