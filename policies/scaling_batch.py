"""The Bayesian scaling decision for many workloads at once: one array computation per decision step.

`BayesianScalingPolicy.decide` answers for one workload and builds the full evidence (candidates,
guardrail effects, forecast summaries). A replay of hundreds of workloads needs only the replica counts,
and spends its time in per-workload Python and small numpy calls. `decide_batch` computes the same
answer for all workloads of a step together:

* the replica-risk tables (proactive on the model forecast, reactive on persistence) of every workload
  in one exceedance evaluation, with the interference quadrature's identical points merged (the
  quadrature points of a quantile function are monotone in probability, so equal ones are adjacent);
* the persistence forecasts from one sort of the observed changes per horizon step;
* the skill blend and the guardrail chain as array expressions.

It is the same rule, not an approximation: `ScalingBatch.row(w)` is the `ScalingInput` of workload w,
and `tests/policies/test_scaling_batch.py` checks that `decide` on it gives the same replicas (and risk
within 1e-9) on varied inputs, interference and backlog included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from policies.adaptive import ViolationHistory, adapt_risk
from policies.distribution import QuantileForecast
from policies.guardrails import StepLimit
from policies.scaling import DEGRADATION_POINTS, BayesianScalingPolicy, ScalingInput
from policies.skill import PERSISTENCE_LEVELS, proactive_weight
from policies.slo import DEFAULT_SLO
from policies.types import InvalidPolicyInput

FALLBACK_HEADROOM = 1.2
"""Headroom of `reactive_fallback` (no forecast and too little history for persistence)."""


@dataclass(frozen=True)
class ScalingBatch:
    """What the Bayesian policy reads about W workloads at `now_ts`, as arrays (one row per workload).

    The load forecasts share one set of levels and steps (`forecast` (W, steps, levels), rows where
    `has_forecast` is False ignored); the degradation forecasts are per workload (None: healthy)."""

    now_ts: float
    current: np.ndarray
    capacity: np.ndarray
    observed: np.ndarray
    """(k, W) recent observed load, oldest first, one row per `observed_step_seconds`."""
    levels: tuple[float, ...]
    forecast: np.ndarray
    has_forecast: np.ndarray
    epsilon: np.ndarray
    backlog: np.ndarray
    observed_step_seconds: float = 60.0
    forecast_step_seconds: float = 60.0
    degradation: Sequence[QuantileForecast | None] | None = None
    skill: np.ndarray | None = None
    """(W,) live loss ratio against persistence; None: not tracked (the forecast is trusted alone)."""
    recent_ts: np.ndarray | None = None
    """(W, H) timestamps of recent recommendations (NaN: empty slot), with `recent_n` the counts."""
    recent_n: np.ndarray | None = None
    windows: np.ndarray | None = None
    """(W,) observed windows and (`violated`) those over the SLO, for the adaptive ε; None: no history."""
    violated: np.ndarray | None = None
    min_replicas: int = 1
    max_replicas: int | None = None
    target_utilisation: float = DEFAULT_SLO.target_utilisation
    cost_per_replica: float = DEFAULT_SLO.cost_per_replica
    sla_penalty: float = DEFAULT_SLO.sla_penalty
    drain_seconds: float | None = None

    def __post_init__(self) -> None:
        w = len(self.current)
        shapes = {
            "capacity": self.capacity.shape == (w,),
            "observed": self.observed.ndim == 2 and self.observed.shape[1] == w,
            "forecast": self.forecast.ndim == 3 and self.forecast.shape[::2] == (w, len(self.levels)),
            "has_forecast": self.has_forecast.shape == (w,),
            "epsilon": self.epsilon.shape == (w,),
            "backlog": self.backlog.shape == (w,),
            "degradation": self.degradation is None or len(self.degradation) == w,
            "skill": self.skill is None or self.skill.shape == (w,),
        }
        wrong = [name for name, ok in shapes.items() if not ok]
        if wrong:
            raise InvalidPolicyInput(f"batch arrays of the wrong shape for {w} workloads: {', '.join(wrong)}")
        if (self.recent_ts is None) != (self.recent_n is None):
            raise InvalidPolicyInput("recent_ts and recent_n come together")
        if (self.windows is None) != (self.violated is None):
            raise InvalidPolicyInput("windows and violated come together")
        if not np.all((self.epsilon > 0) & (self.epsilon < 1)):
            raise InvalidPolicyInput("epsilon must lie in (0, 1) for every workload")

    @property
    def workloads(self) -> int:
        return len(self.current)

    @property
    def usable(self) -> np.ndarray:
        return self.capacity * self.target_utilisation

    def row(self, w: int) -> ScalingInput:
        """The `ScalingInput` of workload `w` (what `BayesianScalingPolicy.decide` reads)."""
        recent: tuple[tuple[float, int], ...] = ()
        if self.recent_ts is not None and self.recent_n is not None:
            keep = np.isfinite(self.recent_ts[w])
            recent = tuple(
                (float(t), int(n))
                for t, n in zip(self.recent_ts[w][keep], self.recent_n[w][keep], strict=True)
            )
        history = None
        if self.windows is not None and self.violated is not None:
            history = ViolationHistory(int(self.windows[w]), int(self.violated[w]))
        forecast = None
        if self.has_forecast[w]:
            forecast = QuantileForecast(self.levels, self.forecast[w], self.forecast_step_seconds)
        return ScalingInput(
            workload=f"w{w}",
            now_ts=self.now_ts,
            current_replicas=int(self.current[w]),
            replica_capacity=float(self.capacity[w]),
            load_forecast=forecast,
            observed_load=tuple(float(x) for x in self.observed[:, w]),
            observed_step_seconds=self.observed_step_seconds,
            degradation_forecast=None if self.degradation is None else self.degradation[w],
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            target_utilisation=self.target_utilisation,
            epsilon=float(self.epsilon[w]),
            cost_per_replica=self.cost_per_replica,
            sla_penalty=self.sla_penalty,
            violations=history,
            recent_recommendations=recent,
            backlog=float(self.backlog[w]),
            drain_seconds=self.drain_seconds,
            forecast_skill=None if self.skill is None else float(self.skill[w]),
        )


@dataclass(frozen=True)
class BatchDecision:
    """Per workload: the replicas after the guardrails, the count wanted before them, and the inputs of
    the blend (-1 where a side had no answer; risk NaN on the no-forecast fallback)."""

    replicas: np.ndarray
    wanted: np.ndarray
    proactive: np.ndarray
    reactive: np.ndarray
    weight: np.ndarray
    epsilon_used: np.ndarray
    risk_at_final: np.ndarray


def _replicas_for(load: np.ndarray, usable: np.ndarray) -> np.ndarray:
    return np.maximum(np.ceil(load / usable - 1e-9), 0).astype(int)


def _quantile_at(values: np.ndarray, levels: tuple[float, ...], u: np.ndarray) -> np.ndarray:
    """`QuantileForecast.inverse_cdf` for a stack of forecasts: (..., S, L) values -> (..., len(u), S)."""
    tau = np.asarray(levels)
    u = np.clip(u, 1e-9, 1.0 - 1e-9)
    q = np.moveaxis(values, -1, 0)  # (L, ..., S)
    seg = np.clip(np.searchsorted(tau, u, side="right") - 1, 0, len(tau) - 2)
    frac = np.clip((u - tau[seg]) / (tau[seg + 1] - tau[seg]), 0.0, 1.0)
    lo, hi = q[seg], q[seg + 1]  # (len(u), ..., S)
    out = lo + (hi - lo) * frac.reshape(-1, *([1] * (q.ndim - 1)))
    theta_lo = (q[1] - q[0]) / np.log(tau[1] / tau[0])
    theta_hi = (q[-1] - q[-2]) / np.log((1.0 - tau[-2]) / (1.0 - tau[-1]))
    shape = (-1, *([1] * (q.ndim - 1)))
    low, high = u < tau[0], u > tau[-1]
    if low.any():
        out[low] = q[0][None] - theta_lo[None] * np.log(tau[0] / u[low]).reshape(shape)
    if high.any():
        out[high] = q[-1][None] + theta_hi[None] * np.log((1.0 - tau[-1]) / (1.0 - u[high])).reshape(shape)
    return np.moveaxis(out, 0, -2)


def _degradation_points(
    forecasts: Sequence[QuantileForecast | None] | None, rows: np.ndarray, steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`scaling.degradation_points` of the workloads `rows`, flattened: (workload index into `rows`,
    values (P, steps), weights (P,)), one entry per distinct point, grouped by workload."""
    n = len(rows)
    u = (np.arange(DEGRADATION_POINTS) + 0.5) / DEGRADATION_POINTS
    owner_parts, value_parts, weight_parts = [np.arange(n)], [np.zeros((n, steps))], [np.ones(n)]
    healthy = np.ones(n, dtype=bool)
    groups: dict[tuple[tuple[float, ...], int], list[int]] = {}
    for i, w in enumerate(rows):
        f = None if forecasts is None else forecasts[w]
        if f is not None:
            groups.setdefault((f.levels, f.steps), []).append(i)
    for (levels, _), members in groups.items():
        assert forecasts is not None
        stack = np.stack([forecasts[rows[i]].values for i in members])
        d = np.clip(_quantile_at(stack, levels, u), 0.0, 0.95)  # (G, points, S_d)
        d = d[:, :, np.arange(steps) % d.shape[2]]
        new = np.ones(d.shape[:2], dtype=bool)
        new[:, 1:] = (d[:, 1:] != d[:, :-1]).any(axis=2)  # monotone in u: equal points are adjacent
        run = np.cumsum(new, axis=1) - 1
        g_idx, p_idx = np.nonzero(new)
        counts = np.zeros(new.shape)
        np.add.at(counts, (np.repeat(np.arange(len(members)), DEGRADATION_POINTS), run.ravel()), 1.0)
        owner_parts.append(np.asarray(members)[g_idx])
        value_parts.append(d[g_idx, p_idx])
        weight_parts.append(counts[g_idx, run[g_idx, p_idx]] / DEGRADATION_POINTS)
        healthy[members] = False
    owner = np.concatenate(owner_parts)
    keep = np.concatenate([healthy, np.ones(len(owner) - n, dtype=bool)])
    owner, values, weights = (
        owner[keep],
        np.concatenate(value_parts)[keep],
        np.concatenate(weight_parts)[keep],
    )
    order = np.argsort(owner, kind="stable")
    return owner[order], values[order], weights[order]


ROUNDING = 1e-12
"""Slack on the risk bounds, so a quadrature average that rounds below its smallest term is still
bracketed."""


@dataclass(frozen=True)
class _Group:
    """G workloads whose risk is read under one kind of forecast: quantiles (G, S, L) at `levels`, the
    usable capacity per replica and the backlog rate of each, and their distinct degradation points."""

    values: np.ndarray
    levels: tuple[float, ...]
    usable: np.ndarray
    extra: np.ndarray
    points: tuple[np.ndarray, np.ndarray, np.ndarray]

    def per_step(
        self, counts: np.ndarray, points: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """(G, C, S): P(load + backlog rate > n · usable · (1 - D)) at step t for the counts (G, C) of
        each workload: the weighted mean over the degradation points (`scaling.replica_risk`)."""
        owner, d, weights = points or self.points
        # thresholds[p, c, t] = counts[owner p, c] * usable * (1 - d[p, t]) - extra
        thresholds = (
            counts[owner, :, None] * self.usable[owner, None, None] * (1.0 - d)[:, None, :]
            - self.extra[owner, None, None]
        )
        weighted = self._exceedance(owner, thresholds) * weights[:, None, None]
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        return np.add.reduceat(weighted, starts, axis=0)  # owners are 0..G-1 in order

    def _exceedance(self, owner: np.ndarray, b: np.ndarray) -> np.ndarray:
        """`exceedance_from_quantiles` of workload owner[p]'s step-t quantiles at thresholds b[p, c, t],
        without tiling the quantiles over the thresholds (interpolated CDF, exponential tails)."""
        tau = np.asarray(self.levels, dtype=float)
        k = len(tau)
        q = self.values[owner][:, None, :, :]  # (P, 1, S, L): broadcast over the counts
        below = np.zeros(b.shape, dtype=np.intp)
        for j in range(k):  # knots at or below the threshold
            below += q[..., j] <= b
        seg = np.clip(below - 1, 0, k - 2)
        # the segment's knots, indexed directly (take_along_axis would first broadcast q over the counts)
        point = np.arange(b.shape[0])[:, None, None]
        step = np.arange(b.shape[2])[None, None, :]
        lo, hi = q[point, 0, step, seg], q[point, 0, step, seg + 1]
        tau_lo, tau_hi = tau[seg], tau[seg + 1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            frac = np.where(hi > lo, (b - lo) / (hi - lo), 0.0)
            cdf = tau_lo + (tau_hi - tau_lo) * frac
            low = below == 0
            if low.any():
                q0, q1, bl = q[..., 0], q[..., 1], b[low]
                theta = np.broadcast_to((q1 - q0) / np.log(tau[1] / tau[0]), b.shape)[low]
                first = np.broadcast_to(q0, b.shape)[low]
                cdf[low] = np.where(theta > 0, tau[0] * np.exp(-(first - bl) / theta), 0.0)
            top = below == k
            if top.any():
                qk, qk1 = q[..., -1], q[..., -2]
                theta = np.broadcast_to((qk - qk1) / np.log((1.0 - tau[-2]) / (1.0 - tau[-1])), b.shape)[top]
                gap = b[top] - np.broadcast_to(qk, b.shape)[top]
                tail = np.where(
                    theta > 0, (1.0 - tau[-1]) * np.exp(-gap / theta), np.where(gap > 0, 0.0, 1.0 - tau[-1])
                )
                cdf[top] = 1.0 - tail
        return np.clip(1.0 - cdf, 0.0, 1.0)

    def points_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The degradation points of the workloads `rows` (ascending) alone: `per_step` with them
        answers for those workloads only, in that order."""
        owner, d, weights = self.points
        keep = np.isin(owner, rows)
        return owner[keep], d[keep], weights[keep]

    def bounds(self) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
        """Single-point degradations at each workload's smallest and largest point per step: the risk
        under them brackets the quadrature's (exceedance grows with the slowdown)."""
        owner, d, _ = self.points
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        g, ones = np.arange(len(starts)), np.ones(len(starts))
        return (g, np.minimum.reduceat(d, starts, axis=0), ones), (
            g,
            np.maximum.reduceat(d, starts, axis=0),
            ones,
        )


def _choose(
    group: _Group, limit: np.ndarray, epsilon: np.ndarray, cost_per_replica: float, penalty: np.ndarray
) -> np.ndarray:
    """The cheapest count in 0..limit whose risk meets ε (the limit when none does), as `_choose` of
    the per-workload policy, with the full quadrature evaluated only where the answer can lie.

    risk(n) is non-increasing in n, so counts whose risk under the smallest slowdown already exceeds ε
    are infeasible; and once a count m is feasible under the largest slowdown with penalty · mean risk
    below one replica's cost, every larger count costs more than m. Between the two the exact table
    decides."""
    g = len(limit)
    counts = np.broadcast_to(np.arange(int(limit.max()) + 1), (g, int(limit.max()) + 1))
    searched = counts <= limit[:, None]
    low_pts, high_pts = group.bounds()
    below = group.per_step(counts, low_pts)  # risk lower bound
    above = group.per_step(counts, high_pts)  # risk upper bound
    maybe = searched & (below.max(axis=2) - ROUNDING <= epsilon[:, None])
    lo = np.where(maybe.any(axis=1), np.argmax(maybe, axis=1), limit)
    surely = searched & (above.max(axis=2) + ROUNDING <= epsilon[:, None])
    if cost_per_replica > 0:
        dominant = surely & (penalty[:, None] * (above.mean(axis=2) + ROUNDING) < cost_per_replica)
    else:
        dominant = surely & (penalty[:, None] == 0)
    hi = np.where(dominant.any(axis=1), np.argmax(dominant, axis=1), limit)
    hi = np.maximum(hi, lo)
    # where the bounds meet, lo is the answer: surely feasible and dominant, or the limit either way
    chosen, open_ = lo.copy(), np.flatnonzero(hi > lo)
    if not len(open_):
        return chosen
    width = int((hi - lo).max()) + 1
    window = np.minimum(lo[:, None] + np.arange(width)[None, :], hi[:, None])
    exact = group.per_step(window, group.points_of(open_))  # (len(open_), width, S)
    window = window[open_]
    cost = window * cost_per_replica + penalty[open_, None] * exact.mean(axis=2)
    feasible = exact.max(axis=2) <= epsilon[open_, None]
    best = window[np.arange(len(open_)), np.argmin(np.where(feasible, cost, np.inf), axis=1)]
    chosen[open_] = np.where(feasible.any(axis=1), best, limit[open_])
    return chosen


def _search_limit(
    top: np.ndarray, usable: np.ndarray, current: np.ndarray, batch: ScalingBatch
) -> np.ndarray:
    limit = _replicas_for(top, usable) * 2 + 2
    if batch.max_replicas is not None:
        limit = np.maximum(np.minimum(limit, batch.max_replicas * 2), batch.max_replicas)
    return np.maximum.reduce([limit, current, np.full_like(limit, max(batch.min_replicas, 1))])


def _persistence(
    observed: np.ndarray, steps: int, epsilon: np.ndarray, levels: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """`skill.persistence_forecast` for every column of `observed` (k, W): (values (W, steps, L), which
    workloads have enough changes to certify their ε)."""
    k, n_w = observed.shape
    need = np.ceil((1.0 - epsilon) / epsilon)
    ok = (k - steps) >= need
    tau = np.asarray(levels, dtype=float)
    out = np.zeros((n_w, steps, len(levels)))
    if not ok.any():
        return out, ok
    last = observed[-1]
    for j in range(1, steps + 1):
        changes = np.sort(observed[j:] - observed[:-j], axis=0)
        at = np.ceil(tau * (len(changes) - 1) - 1e-12).astype(int)
        out[:, j - 1, :] = np.maximum(last[:, None] + changes[at].T, 0.0)
    return out, ok


def _adapted(batch: ScalingBatch) -> tuple[np.ndarray, np.ndarray]:
    """ε and penalty after `adapt_risk` per workload (the stated ones when there is no history)."""
    eps = batch.epsilon.astype(float)
    penalty = np.full(batch.workloads, float(batch.sla_penalty))
    if batch.windows is None or batch.violated is None:
        return eps, penalty
    for w in range(batch.workloads):
        history = ViolationHistory(int(batch.windows[w]), int(batch.violated[w]))
        adapted = adapt_risk(float(eps[w]), float(penalty[w]), history)
        eps[w], penalty[w] = adapted.epsilon, adapted.penalty
    return eps, penalty


def _stabilization_floor(batch: ScalingBatch, window: float) -> np.ndarray:
    """Highest recommendation within `window` seconds per workload (-1: none)."""
    if batch.recent_ts is None or batch.recent_n is None:
        return np.full(batch.workloads, -1)
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(batch.recent_ts) & (batch.now_ts - batch.recent_ts <= window)
    return np.where(inside, batch.recent_n, -1).max(axis=1, initial=-1).astype(int)


def _guardrails(
    proposed: np.ndarray,
    batch: ScalingBatch,
    observed_need: np.ndarray,
    latest_need: np.ndarray | None,
    stabilization_seconds: float,
    step: StepLimit,
) -> np.ndarray:
    """`guardrails.default_chain` as array expressions (needs: -1 where there is no observation)."""
    cur = batch.current.astype(int)
    p = proposed.astype(int)
    shrink = p < cur
    allowed = np.where(observed_need < 0, cur, np.maximum(p, np.minimum(cur, observed_need)))
    p = np.where(shrink, allowed, p)
    if latest_need is not None:
        p = np.where((latest_need >= 0) & (p < latest_need), latest_need, p)
    floor = _stabilization_floor(batch, stabilization_seconds)
    p = np.where((p < cur) & (floor >= 0), np.maximum(p, np.minimum(floor, cur)), p)
    up = np.maximum(step.max_up, np.ceil(cur * step.max_up_fraction).astype(int))
    down = np.maximum(step.max_down, np.floor(cur * step.max_down_fraction).astype(int))
    p = np.minimum(np.maximum(p, cur - down), cur + up)
    p = np.maximum(p, batch.min_replicas)
    if batch.max_replicas is not None:
        p = np.minimum(p, batch.max_replicas)
    return p


def _backlog_rate(batch: ScalingBatch, span: np.ndarray) -> np.ndarray:
    if batch.drain_seconds is not None:
        span = np.full(batch.workloads, batch.drain_seconds)
    return np.where(batch.backlog > 0, batch.backlog / span, 0.0)


def decide_batch(policy: BayesianScalingPolicy, batch: ScalingBatch) -> BatchDecision:
    """`policy.decide(batch.row(w))` for every workload w, without building per-workload evidence."""
    n_w = batch.workloads
    usable, cur = batch.usable, batch.current.astype(int)
    eps, penalty = _adapted(batch)
    has_fc = batch.has_forecast.astype(bool)
    steps = batch.forecast.shape[1]
    span = np.where(has_fc, steps * batch.forecast_step_seconds, batch.observed_step_seconds)
    extra = _backlog_rate(batch, span)
    obs = batch.observed
    if len(obs):
        need = _replicas_for(obs[-5:].max(axis=0) + extra, usable)
        latest = _replicas_for(obs[-1] + extra, usable)
    else:
        need = latest = np.full(n_w, -1)
    chosen = {"proactive": np.full(n_w, -1), "reactive": np.full(n_w, -1)}
    shown: list[tuple[np.ndarray, _Group, np.ndarray]] = []  # the table each workload's evidence shows

    def side(name: str, rows: np.ndarray, values: np.ndarray, levels: tuple[float, ...]) -> None:
        if not len(rows):
            return
        top = values[:, :, -1].max(axis=1) + extra[rows]
        limit = _search_limit(top, usable[rows], cur[rows], batch)
        points = _degradation_points(batch.degradation, rows, values.shape[1])
        group = _Group(values, levels, usable[rows], extra[rows], points)
        chosen[name][rows] = _choose(group, limit, eps[rows], batch.cost_per_replica, penalty[rows])
        if name == "proactive" or not has_fc[rows].any():
            shown.append((rows, group, limit))

    tracked = batch.skill is not None
    fc_rows, bare = np.flatnonzero(has_fc), np.flatnonzero(~has_fc)
    side("proactive", fc_rows, batch.forecast[fc_rows], batch.levels)
    if tracked and len(fc_rows):  # the reactive controller on the model forecast's window and levels
        values, ok = _persistence(obs[:, fc_rows], steps, eps[fc_rows], batch.levels)
        side("reactive", fc_rows[ok], values[ok], batch.levels)
    if len(bare):  # no model forecast: persistence alone, one step ahead
        values, ok = _persistence(obs[:, bare], 1, eps[bare], PERSISTENCE_LEVELS)
        side("reactive", bare[ok], values[ok], PERSISTENCE_LEVELS)
    proactive, reactive = chosen["proactive"], chosen["reactive"]
    if tracked:
        assert batch.skill is not None
        weight = np.array([proactive_weight(float(s)) for s in batch.skill])
    else:
        weight = np.ones(n_w)
    weight = np.where(has_fc, weight, 0.0)
    n_p = np.where(proactive >= 0, proactive, 0)
    n_r = np.where(reactive >= 0, reactive, np.maximum(cur, need))  # too little history: hold
    wanted = np.ceil(weight * n_p + (1.0 - weight) * n_r - 1e-9).astype(int)
    floor = latest if policy.reactive_floor else None
    final = _guardrails(wanted, batch, need, floor, policy.stabilization_seconds, policy.step_limit)
    # no forecast and too little history for persistence: `reactive_fallback` (never scales in)
    fallback = ~has_fc & (reactive < 0)
    if fallback.any():
        peak = obs[-10:].max(axis=0) if len(obs) else np.zeros(n_w)
        fb_wanted = np.maximum(_replicas_for(peak * FALLBACK_HEADROOM, usable), cur)
        fb_final = _guardrails(fb_wanted, batch, need, None, 300.0, StepLimit())
        wanted = np.where(fallback, fb_wanted, wanted)
        final = np.where(fallback, fb_final, final)
    risk_final = np.full(n_w, np.nan)
    for rows, group, limit in shown:
        at = np.minimum(final[rows], limit)[:, None]
        risk_final[rows] = group.per_step(at)[:, 0, :].max(axis=1)
    return BatchDecision(final, wanted, proactive, reactive, weight, eps, risk_final)


def stack_forecasts(
    forecasts: Sequence[QuantileForecast | None],
) -> tuple[tuple[float, ...], np.ndarray, np.ndarray, float]:
    """(levels, values (W, steps, L), has_forecast, step seconds) from per-workload forecasts, which must
    share levels, steps and step size where present."""
    present = [f for f in forecasts if f is not None]
    if not present:
        return (
            PERSISTENCE_LEVELS,
            np.zeros((len(forecasts), 1, len(PERSISTENCE_LEVELS))),
            np.zeros(len(forecasts), dtype=bool),
            60.0,
        )
    first = present[0]
    if any(
        (f.levels, f.steps, f.step_seconds) != (first.levels, first.steps, first.step_seconds)
        for f in present
    ):
        raise InvalidPolicyInput("batched load forecasts must share levels, steps and step size")
    values = np.zeros((len(forecasts), first.steps, len(first.levels)))
    has = np.zeros(len(forecasts), dtype=bool)
    for w, f in enumerate(forecasts):
        if f is not None:
            values[w], has[w] = f.values, True
    return first.levels, values, has, first.step_seconds
