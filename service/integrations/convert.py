"""Turn decoded source series (remote-write, OTLP, a Prometheus query) into the telemetry `ParsedBatch`
that `service.telemetry.service.ingest` stores, so every path shares its guarantees (one transaction,
resent samples skipped as duplicates, 503 when the database is down).

Samples that can never be stored — Prometheus staleness markers and other NaN/infinite values, values
negative for their unit, timestamps far in the future, series the mapping cannot place — are left out and
counted by reason instead of failing the batch: a sender drops a batch answered with 4xx, so refusing the
whole batch for one such sample would lose every good sample with it, and resending cannot fix it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session

from service.integrations.labels import CompiledMapping, Mapped, rate_series
from service.telemetry import repository
from service.telemetry.validation import ParsedBatch, ParsedSeries

STALE_NAN_BITS = 0x7FF0000000000002  # Prometheus staleness marker
RATE_LOOKBACK_US = 3600 * 1_000_000  # a counter sample older than this before a batch gives no rate
Pairs = tuple[tuple[str, str], ...]


@dataclass
class RawBatch:
    """Source series as flat arrays: series i owns `lengths[i]` consecutive samples."""

    names: list[str]
    labels: list[Pairs]
    lengths: np.ndarray
    ts_us: np.ndarray
    values: np.ndarray
    contexts: list[Pairs] | None = None
    units: list[str | None] | None = None
    counters: list[bool | None] | None = None

    @property
    def sample_count(self) -> int:
        return len(self.values)


@dataclass
class Converted:
    """The batch to ingest, the mapping of each of its series, and what was left out (reason -> samples)."""

    batch: ParsedBatch
    mapped: list[Mapped]
    dropped: Counter[str] = field(default_factory=Counter)


def convert(raw: RawBatch, mapping: CompiledMapping, *, max_future_seconds: int) -> Converted:
    """Map every series, merge series that map to one identity, filter and sort the samples."""
    dropped: Counter[str] = Counter()
    n = len(raw.names)
    group_of = np.full(n, -1, dtype=np.int64)
    groups: list[Mapped] = []
    first_index: list[int] = []
    position: dict[object, int] = {}
    for i in range(n):
        found = mapping.resolve(
            raw.names[i],
            raw.labels[i],
            raw.contexts[i] if raw.contexts else (),
            raw.units[i] if raw.units else None,
            raw.counters[i] if raw.counters else None,
        )
        if isinstance(found, str):
            dropped[found] += int(raw.lengths[i])
            continue
        g = position.setdefault(found.key, len(groups))
        if g == len(groups):
            groups.append(found)
            first_index.append(i)
        group_of[i] = g
    owner = group_of[np.repeat(np.arange(n, dtype=np.int64), raw.lengths)]
    ts, values = raw.ts_us, raw.values
    keep = owner >= 0
    finite = np.isfinite(values)
    stale = values.view(np.uint64) == STALE_NAN_BITS
    _drop(dropped, "stale_marker", keep & stale, keep)
    _drop(dropped, "not_finite", keep & ~finite, keep)
    latest = int((time.time() + max_future_seconds) * 1e6)
    _drop(dropped, "future_timestamp", keep & (ts > latest), keep)
    _drop(dropped, "before_1970", keep & (ts < 0), keep)
    non_negative = np.array([g.non_negative for g in groups] + [False], dtype=bool)[owner]
    _drop(dropped, "negative_value", keep & non_negative & (values < 0), keep)
    owner, ts, values = owner[keep], ts[keep], values[keep]
    factors = np.array([g.factor for g in groups] + [1.0])[owner]
    if (factors != 1.0).any():
        values = values * factors  # canonical units (e.g. a percentage into a ratio)
    order = np.lexsort((ts, owner))
    owner, ts, values = owner[order], ts[order], values[order]
    repeat = np.r_[False, (np.diff(owner) == 0) & (np.diff(ts) == 0)]
    if repeat.any():  # two source series mapped to one identity at the same instant: the first one wins
        dropped["duplicate_in_batch"] += int(repeat.sum())
        owner, ts, values = owner[~repeat], ts[~repeat], values[~repeat]
    used, owner = np.unique(owner, return_inverse=True)
    series = [
        ParsedSeries(first_index[g], groups[g].key, groups[g].unit, groups[g].labels, [])
        for g in used.tolist()
    ]
    batch = ParsedBatch(series, owner.astype(np.int64), ts, values)
    return Converted(batch, [groups[g] for g in used.tolist()], dropped)


def _drop(dropped: Counter[str], reason: str, bad: np.ndarray, keep: np.ndarray) -> None:
    count = int(bad.sum())
    if count:
        dropped[reason] += count
        keep &= ~bad


def add_rates(session: Session, converted: Converted, every_counter: bool = True) -> ParsedBatch:
    """The batch plus a per-second rate series for each counter (`name:rate`, or the canonical input it
    feeds, e.g. `cpu_usage_cores`; resets handled like Prometheus: a drop means the counter restarted
    from zero). Canonical inputs always get their rate; other counters when `every_counter`. The sample
    before a batch is read from the stored raw counter, so any replica, a restart or a retry computes the
    same rates."""
    batch = converted.batch
    is_counter = np.array(
        [m.counter and (every_counter or m.rate_metric is not None) for m in converted.mapped], dtype=bool
    )
    if not is_counter.any():
        return batch
    owner, ts, values = batch.owner, batch.ts_us, batch.values
    starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]  # samples are sorted by (owner, ts)
    prev_ts, prev_values = _stored_before(session, converted, is_counter, ts[starts])
    before_t = np.r_[0, ts[:-1]]
    before_v = np.r_[np.nan, values[:-1]]
    before_t[starts] = prev_ts
    before_v[starts] = prev_values
    seconds = (ts - before_t) / 1e6
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(values >= before_v, values - before_v, values) / seconds
    valid = is_counter[owner] & np.isfinite(rate) & (seconds > 0) & ~np.isnan(before_v)
    rate_owners = np.unique(owner[valid])
    new_position = np.full(len(batch.series), -1, dtype=np.int64)
    new_position[rate_owners] = np.arange(len(rate_owners)) + len(batch.series)
    extra = []
    factors = np.ones(len(batch.series))
    for p in rate_owners.tolist():
        derived = rate_series(converted.mapped[p])
        factors[p] = derived.factor
        extra.append(ParsedSeries(batch.series[p].index, derived.key, derived.unit, derived.labels, []))
    return ParsedBatch(
        [*batch.series, *extra],
        np.r_[owner, new_position[owner[valid]]],
        np.r_[ts, ts[valid]],
        np.r_[values, rate[valid] * factors[owner[valid]]],
    )


def _stored_before(
    session: Session, converted: Converted, is_counter: np.ndarray, first_ts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(ts, value) of each series' last stored sample before its first sample in the batch (NaN: none)."""
    prev_ts = np.zeros(len(first_ts), dtype=np.int64)
    prev_values = np.full(len(first_ts), np.nan)
    positions = np.flatnonzero(is_counter)
    specs = [
        (converted.mapped[p].key, converted.mapped[p].unit, converted.mapped[p].labels) for p in positions
    ]
    known = repository.resolve_series(session, specs)
    ids = np.array([known[spec[0]].id for spec in specs], dtype=np.int64)
    lo = int(first_ts[positions].min()) - RATE_LOOKBACK_US
    hi = int(first_ts[positions].max()) - 1
    sid, stored_ts, stored_values = repository.samples_of_series(session, ids.tolist(), lo, hi)
    for p, series_id in zip(positions.tolist(), ids.tolist(), strict=True):
        a, b = np.searchsorted(sid, series_id, "left"), np.searchsorted(sid, series_id, "right")
        k = a + int(np.searchsorted(stored_ts[a:b], first_ts[p], "left")) - 1
        if k >= a and first_ts[p] - stored_ts[k] <= RATE_LOOKBACK_US:
            prev_ts[p], prev_values[p] = stored_ts[k], stored_values[k]
    return prev_ts, prev_values
