"""Downsampling of one series into fixed steps (mean / max / p95 / count), vectorised with numpy.

Used for SQLite (no percentile function); Postgres computes the same buckets in SQL. p95 interpolates
linearly between order statistics, as Postgres' `percentile_cont` does, so both backends agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEP_CHOICES = (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass
class Buckets:
    start_seconds: np.ndarray  # bucket starts, epoch seconds (multiples of the step)
    mean: np.ndarray
    max: np.ndarray
    p95: np.ndarray
    count: np.ndarray


def nice_step(span_seconds: float, max_points: int) -> int:
    """The smallest usual step giving at most `max_points` epoch-aligned buckets over the span."""
    needed = span_seconds / max(max_points - 1, 1)
    for step in STEP_CHOICES:
        if step >= needed:
            return step
    return int(np.ceil(needed / 86400) * 86400)


def bucketize(ts_us: np.ndarray, values: np.ndarray, step_seconds: int, quantile: float = 0.95) -> Buckets:
    """Aggregate samples (sorted or not) into epoch-aligned buckets of `step_seconds`."""
    if len(ts_us) == 0:
        empty = np.array([], dtype=np.float64)
        return Buckets(np.array([], dtype=np.int64), empty, empty, empty, np.array([], dtype=np.int64))
    bucket = ts_us // (step_seconds * 1_000_000)
    order = np.lexsort((values, bucket))
    bucket, ordered = bucket[order], values[order]
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    counts = np.diff(np.r_[starts, len(bucket)])
    sums = np.add.reduceat(ordered, starts)
    maxima = ordered[starts + counts - 1]
    position = quantile * (counts - 1)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, counts - 1)
    fraction = position - lower
    p95 = ordered[starts + lower] * (1 - fraction) + ordered[starts + upper] * fraction
    return Buckets(bucket[starts] * step_seconds, sums / counts, maxima, p95, counts)
