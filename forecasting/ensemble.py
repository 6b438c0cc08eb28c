"""Greedy ensemble selection (Caruana et al., 2004, with replacement) on validation CRPS, vectorised over
groups (one group per series): every group gets its own weights in one pass.

Members are combined by averaging their quantiles level by level (Vincentization), which keeps quantiles
monotone. Round one picks each group's best single member; every later round adds (again, with
replacement) the member that lowers the group's validation CRPS most; the weights returned are those of
the best round, so the ensemble is never worse than its best member on the validation rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from forecasting.metrics import crps_weights


def row_crps(y: np.ndarray, q: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """CRPS of each row (n,) from quantiles q (n, K): quadrature of twice the pinball loss."""
    tau = np.asarray(levels, dtype=float)
    diff = y[:, None] - q
    pinball = np.maximum(tau * diff, (tau - 1.0) * diff)
    return 2.0 * pinball @ crps_weights(tau)


def row_squared_error(y: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Squared error of each row (n,) of a point forecast given as q (n, 1)."""
    return (y - q[:, 0]) ** 2


def greedy_selection(
    y: np.ndarray,
    q: np.ndarray,
    levels: Sequence[float],
    group: np.ndarray,
    n_groups: int,
    rounds: int = 20,
    row_weight: np.ndarray | None = None,
    row_loss: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n_groups, M) and the ensemble's validation loss per group (n_groups,).

    `q` is (M, n, K) member quantiles on the same n rows, `group` (n,) the group of each row in
    [0, n_groups), `row_weight` (n,) an optional weight of each row's loss (e.g. 1 / series scale when one
    group pools series of different units). Groups without rows get uniform weights and NaN loss.
    `row_loss(y, q) -> (n,)` replaces the CRPS, e.g. `row_squared_error` to select the weights of the
    members' means (K = 1) on the loss a mean minimises.
    """
    loss_of = row_loss or (lambda yy, qq: row_crps(yy, qq, levels))
    m = q.shape[0]
    w_row = np.ones(len(y)) if row_weight is None else np.asarray(row_weight, dtype=float)
    mass = np.bincount(group, weights=w_row, minlength=n_groups)
    has = mass > 0

    def group_loss(qq: np.ndarray) -> np.ndarray:
        total = np.bincount(group, weights=loss_of(y, qq) * w_row, minlength=n_groups)
        return np.where(has, total / np.where(has, mass, 1.0), np.inf)

    counts = np.zeros((n_groups, m))
    running = np.zeros_like(q[0])
    best_loss = np.full(n_groups, np.inf)
    best_counts = np.ones((n_groups, m))
    for r in range(max(1, rounds)):
        size = r + 1
        losses = np.stack([group_loss((running + q[j]) / size) for j in range(m)])  # (M, G)
        pick = np.argmin(losses, axis=0)
        loss = losses[pick, np.arange(n_groups)]
        counts[np.arange(n_groups), pick] += 1
        running += q[pick[group], np.arange(len(y))]
        better = loss < best_loss - 1e-12
        best_loss = np.where(better, loss, best_loss)
        best_counts[better] = counts[better]
    weights = best_counts / best_counts.sum(axis=1, keepdims=True)
    return weights, np.where(has, best_loss, np.nan)


def combine(q: np.ndarray, mean: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted quantile average (n, K) and mean (n,) of members q (M, n, K), mean (M, n), weights (n, M)."""
    return np.einsum("mnk,nm->nk", q, weights), np.einsum("mn,nm->n", mean, weights)


SHARE_GRID = (1.0, 0.75, 0.5, 0.25, 0.0)  # ties keep the most per-series weight


def series_share(
    y: np.ndarray,
    q: np.ndarray,
    levels: Sequence[float],
    group: np.ndarray,
    n_groups: int,
    late: np.ndarray,
    scale_weight: np.ndarray,
    rounds: int = 20,
    row_loss: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[float, dict[str, float]]:
    """How far each series' own weights should be trusted over the pooled ones, chosen out of sample.

    Weights are selected per group and pooled on the earlier rows (`~late`), blended as
    `share * own + (1 - share) * pooled` for each share of `SHARE_GRID`, and scored on the later rows
    (`late`), pooled over groups with `scale_weight` (n,) putting groups of different units on one
    footing. A series' own weights come from a few of its validation windows and overfit them; the pooled
    ones from every series' windows and miss what is particular to a series: the later windows say which
    error is the larger on this data. Returns the share (1.0 when there are no later or no earlier rows)
    and the later rows' loss of every share tried.
    """
    early = ~late
    if not early.any() or not late.any():
        return 1.0, {}
    loss_of = row_loss or (lambda yy, qq: row_crps(yy, qq, levels))
    fitted = choose_weights(
        y[early], q[:, early], levels, group[early], n_groups, late[early], scale_weight[early], rounds,
        row_loss, share=1.0,
    )  # fmt: skip
    own, pooled = fitted.own, fitted.pooled
    g_late, w_late = group[late], scale_weight[late]
    losses = {}
    for share in SHARE_GRID:
        w = share * own[g_late] + (1.0 - share) * pooled[None, :]
        blended = np.einsum("mnk,nm->nk", q[:, late], w)
        losses[f"{share:g}"] = float(np.sum(loss_of(y[late], blended) * w_late) / np.sum(w_late))
    best = min(SHARE_GRID, key=lambda s: losses[f"{s:g}"] - 1e-12 * s)
    return best, losses


@dataclass(frozen=True)
class Weighting:
    """Per-series (G, M) and pooled (M,) weights, and how much of the per-series weights was kept."""

    own: np.ndarray
    pooled: np.ndarray
    share: float
    share_losses: dict[str, float]


def choose_weights(
    y: np.ndarray,
    q: np.ndarray,
    levels: Sequence[float],
    group: np.ndarray,
    n_groups: int,
    late: np.ndarray,
    row_weight: np.ndarray,
    rounds: int = 20,
    row_loss: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    share: float | None = None,
) -> Weighting:
    """Each series' weights, `share * own + (1 - share) * pooled` with the share chosen out of sample
    (`series_share`) unless stated; a series without rows gets the pooled weights."""
    own, _ = greedy_selection(y, q, levels, group, n_groups, rounds, row_loss=row_loss)
    pooled, _ = greedy_selection(
        y, q, levels, np.zeros(len(y), dtype=np.int64), 1, rounds, row_weight, row_loss
    )
    tried: dict[str, float] = {}
    if share is None:
        share, tried = series_share(y, q, levels, group, n_groups, late, row_weight, rounds, row_loss)
    seen = np.bincount(group, minlength=n_groups) > 0
    own[~seen] = pooled[0]
    return Weighting(share * own + (1.0 - share) * pooled[0][None, :], pooled[0], share, tried)
