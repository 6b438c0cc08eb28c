"""Workload totals rolled up from pod series, like a Prometheus recording rule `sum without (pod)`.

cAdvisor and kube-state-metrics report per pod (and per container); several pods of one workload are
several series, kept as they came (label `pod`). Policies read the workload's load, so each group of pod
series (same cluster, workload, metric and other labels) gets a sum series without `pod` / `container`.
Pods are scraped at their own instants, so samples are summed per step bucket: the step is the group's
median sampling interval (read from the data, not configured), each series counts with its last sample
in a bucket, and a bucket is written only once it is complete — two steps behind the newest sample — so
a late pod does not leave a short sum behind. Each bucket is written once (sample primary key), so a
re-run, a restart or a second loop replica computes and writes the same totals. Raw counters are
not summed (resets would break the sum): their canonical rates are.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.integrations.labels import DEFAULT_MAPPING
from service.models import Cluster, Series
from service.telemetry import repository
from service.telemetry.validation import SeriesKey

SUMMED_LABELS = ("pod", "container")
COUNTER_SUFFIXES = tuple(DEFAULT_MAPPING.counter_suffixes)
LOOKBACK_STEPS = 20
"""How far before the last written total a rollup re-reads pod samples (in steps)."""
SETTLE_STEPS = 2
"""A bucket is complete once the newest pod sample is this many steps past its start."""


@dataclass(frozen=True)
class _Group:
    cluster: str
    workload: str
    metric: str
    unit: str
    labels: tuple[tuple[str, str], ...]


def roll_up_pods(session: Session, max_points: int = 100_000) -> int:
    """Write every complete bucket of every pod group not yet rolled up; returns the samples written."""
    groups: dict[_Group, list[int]] = defaultdict(list)
    rows = session.execute(
        select(Series.id, Cluster.name, Series.entity_name, Series.metric, Series.unit, Series.labels)
        .join(Cluster, Cluster.id == Series.cluster_id)
        .where(Series.entity_kind == "workload", Series.labels_key.like('%"pod":%'))
    )
    for series_id, cluster, workload, metric, unit, labels in rows:
        if metric.endswith(COUNTER_SUFFIXES):
            continue  # raw counters: their rates (e.g. cpu_usage_cores) are what is summed
        rest = tuple(sorted((k, str(v)) for k, v in (labels or {}).items() if k not in SUMMED_LABELS))
        groups[_Group(cluster, workload, metric, unit, rest)].append(series_id)
    written = 0
    for group, members in groups.items():
        written += _roll_up(session, group, members, max_points)
    return written


def _roll_up(session: Session, group: _Group, members: list[int], max_points: int) -> int:
    step = _step_of(session, members)
    if step is None:
        return 0  # one sample per pod so far: the interval is not known yet
    labels = dict(group.labels)
    key = SeriesKey(group.cluster, "workload", group.workload, group.metric,
                    json.dumps(labels, sort_keys=True, separators=(",", ":")))  # fmt: skip
    target = repository.resolve_series(session, [(key, group.unit, labels)])[key].id
    done, _ = repository.latest_samples(session, target, 1)
    last = int(done[0]) if len(done) else None
    after = None if last is None else last - LOOKBACK_STEPS * step
    sid, ts, values = repository.samples_of_series(session, members, after, None)
    if len(ts) == 0:
        return 0
    bucket = ts // step
    complete = bucket <= int(bucket.max()) - SETTLE_STEPS
    if last is not None:
        complete &= bucket > last // step
    if not complete.any():
        return 0
    sid, bucket, values, ts = sid[complete], bucket[complete], values[complete], ts[complete]
    order = np.lexsort((ts, sid, bucket))  # the last sample of each series in each bucket counts
    sid, bucket, values = sid[order], bucket[order], values[order]
    last_of_pair = np.r_[(np.diff(bucket) != 0) | (np.diff(sid) != 0), True]
    bucket, values = bucket[last_of_pair], values[last_of_pair]
    points, first = np.unique(bucket, return_index=True)
    totals = np.add.reduceat(values, first)
    points, totals = points[-max_points:], totals[-max_points:]
    ids = np.full(len(points), target, dtype=np.int64)
    return repository.insert_samples(session, ids, (points * step).astype(np.int64), totals)


def _step_of(session: Session, members: list[int]) -> int | None:
    """The group's typical sampling interval (µs): the median gap of its members' newest samples."""
    gaps: list[np.ndarray] = []
    for series_id in members[:8]:
        ts, _ = repository.latest_samples(session, series_id, 64)
        gaps.append(np.diff(ts))
    joined = np.concatenate(gaps) if gaps else np.empty(0, dtype=np.int64)
    joined = joined[joined > 0]
    return int(np.median(joined)) if len(joined) else None
