"""The members' scored forecasts that `auto` chooses its weights on, kept current as data arrives.

At fit, the evidence is the validation window just before the end of the training data. Later, what
ends a window is the data a user keeps sending: every forecast `auto` hands out is remembered per member
(`PendingForecasts`), scored once its targets are observed, and the scored rows join the evidence
(`Evidence`), which keeps only each series' newest rows (a fixed multiple of what the validation window
held). The weights are then chosen again by the same selection on a bounded amount of evidence, the newest:
a series whose behaviour changes after the fit (a level shift, a new regime) moves its weight to the
members that forecast the new behaviour, with no learning rate or decay to set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Evidence:
    """Scored rows: series group, the forecast's cutoff (int64 ns, for recency), its horizon step, the
    observed value and every member's quantiles (M, n, K) and mean (M, n)."""

    group: np.ndarray
    cutoff: np.ndarray
    horizon: np.ndarray
    y: np.ndarray
    q: np.ndarray
    mean: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.y)

    def extended(self, other: Evidence, per_group: int) -> Evidence:
        """These rows and `other`'s, keeping each group's `per_group` newest (by cutoff, then horizon)."""
        both = Evidence(
            np.concatenate([self.group, other.group]),
            np.concatenate([self.cutoff, other.cutoff]),
            np.concatenate([self.horizon, other.horizon]),
            np.concatenate([self.y, other.y]),
            np.concatenate([self.q, other.q], axis=1),
            np.concatenate([self.mean, other.mean], axis=1),
        )
        return both.newest(per_group)

    def newest(self, per_group: int) -> Evidence:
        """Each group's `per_group` newest rows, in (group, age) order."""
        order = np.lexsort((-self.horizon.astype(np.int64), -self.cutoff, self.group))
        g = self.group[order]
        first = np.r_[0, np.flatnonzero(np.diff(g)) + 1] if len(g) else np.zeros(0, dtype=int)
        start = np.repeat(first, np.diff(np.r_[first, len(g)]))
        keep = order[(np.arange(len(g)) - start) < per_group]
        return self.take(np.sort(keep))

    def take(self, idx: np.ndarray) -> Evidence:
        return Evidence(
            self.group[idx], self.cutoff[idx], self.horizon[idx], self.y[idx], self.q[:, idx],
            self.mean[:, idx],
        )  # fmt: skip

    def compact(self) -> Evidence:
        """The same rows with the member forecasts in float32: kept with the model, half the bytes."""
        return Evidence(
            self.group,
            self.cutoff,
            self.horizon,
            self.y,
            self.q.astype(np.float32),
            self.mean.astype(np.float32),
        )

    def later_half(self) -> np.ndarray:
        """Rows whose cutoff is in the later half of the distinct cutoffs (the out-of-sample split)."""
        cuts = np.unique(self.cutoff)
        return self.cutoff >= cuts[len(cuts) // 2] if len(cuts) else np.zeros(0, dtype=bool)


@dataclass
class PendingForecasts:
    """Forecasts handed out and not yet scored: one row per (series group, target time)."""

    group: np.ndarray
    ts: np.ndarray
    cutoff: np.ndarray
    horizon: np.ndarray
    q: np.ndarray
    mean: np.ndarray

    @classmethod
    def empty(cls, members: int, levels: int) -> PendingForecasts:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, z, np.zeros((members, 0, levels)), np.zeros((members, 0)))

    def add(self, other: PendingForecasts, keep_cutoffs: int) -> PendingForecasts:
        """Append a new forecast (replacing one made at the same cutoff); keep the `keep_cutoffs` newest."""
        old = ~np.isin(self.cutoff, np.unique(other.cutoff))
        both = PendingForecasts(
            np.concatenate([self.group[old], other.group]),
            np.concatenate([self.ts[old], other.ts]),
            np.concatenate([self.cutoff[old], other.cutoff]),
            np.concatenate([self.horizon[old], other.horizon]),
            np.concatenate([self.q[:, old], other.q], axis=1),
            np.concatenate([self.mean[:, old], other.mean], axis=1),
        )
        cuts = np.unique(both.cutoff)
        return both.take(both.cutoff >= cuts[-keep_cutoffs]) if len(cuts) > keep_cutoffs else both

    def take(self, mask: np.ndarray) -> PendingForecasts:
        return PendingForecasts(
            self.group[mask], self.ts[mask], self.cutoff[mask], self.horizon[mask], self.q[:, mask],
            self.mean[:, mask],
        )  # fmt: skip

    def resolve(
        self, group: np.ndarray, ts: np.ndarray, y: np.ndarray, latest: np.ndarray
    ) -> tuple[Evidence, PendingForecasts]:
        """Score the rows observed in (`group`, `ts`, `y`); rows at or before their series' `latest`
        observed time (int64 ns, indexed by group) that were not observed will never be, and are dropped.
        Returns the scored rows and what is still pending."""
        observed = pd.MultiIndex.from_arrays([np.asarray(group, dtype=np.int64), np.asarray(ts, np.int64)])
        last = ~observed.duplicated(keep="last")  # a value sent twice: the later one counts
        observed, y = observed[last], np.asarray(y, float)[last]
        at = observed.get_indexer(pd.MultiIndex.from_arrays([self.group.astype(np.int64), self.ts]))
        hit = at >= 0
        scored = Evidence(
            self.group[hit], self.cutoff[hit], self.horizon[hit], y[at[hit]],
            self.q[:, hit], self.mean[:, hit],
        )  # fmt: skip
        known = self.group < len(latest)
        past = np.zeros(len(self.group), dtype=bool)
        past[known] = self.ts[known] <= latest[self.group[known]]
        return scored, self.take(~hit & ~past)
