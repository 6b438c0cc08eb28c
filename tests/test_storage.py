"""Storage below the API, on both backends: the sample insert paths (optimistic COPY and the staging
fallback on Postgres, INSERT OR IGNORE on SQLite), exact timestamps, and rollback leaving nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from service.db import Database, on_commit
from service.models.base import from_epoch_us, to_epoch_us
from service.telemetry import repository
from service.telemetry.downsample import bucketize, nice_step
from service.telemetry.validation import SeriesKey
from tests.helpers import counts


def _series_id(database: Database, name: str = "n1") -> int:
    key = SeriesKey("c", "node", name, "cpu", "{}")
    with database.session() as session:
        return repository.resolve_series(session, [(key, "%", {})])[key].id


def _stored(database: Database) -> list[tuple[int, int, float]]:
    with database.session() as session:
        rows = session.execute(text("SELECT series_id, ts, value FROM samples ORDER BY series_id, ts")).all()
    return [(sid, ts if isinstance(ts, int) else to_epoch_us(ts), value) for sid, ts, value in rows]


def test_new_then_overlapping_samples(database: Database) -> None:
    sid = _series_id(database)
    ts = np.array([3, 1, 2], dtype=np.int64) * 1_000_000 + 1_700_000_000_000_123
    with database.session() as session:
        assert repository.insert_samples(session, np.full(3, sid), ts, np.array([3.5, 1.5, -2.25])) == 3
    more = np.r_[ts, ts[0] + 10_000_000]
    with database.session() as session:  # three stored already: the fallback path skips them
        assert repository.insert_samples(session, np.full(4, sid), more, np.array([9.0, 9.0, 9.0, 4.0])) == 1
    first, second, third = (int(t) for t in ts)
    expected = [(sid, second, 1.5), (sid, third, -2.25), (sid, first, 3.5), (sid, first + 10_000_000, 4.0)]
    assert _stored(database) == expected


def test_several_batches_in_one_transaction(database: Database) -> None:
    sid = _series_id(database)
    base = 1_700_000_000 * 1_000_000
    with database.session() as session:
        first = np.arange(5, dtype=np.int64) * 1_000_000 + base
        assert repository.insert_samples(session, np.full(5, sid), first, np.ones(5)) == 5
        overlap = np.arange(3, 8, dtype=np.int64) * 1_000_000 + base
        assert repository.insert_samples(session, np.full(5, sid), overlap, np.ones(5)) == 3
        later = np.arange(20, 22, dtype=np.int64) * 1_000_000 + base
        assert repository.insert_samples(session, np.full(2, sid), later, np.ones(2)) == 2
    assert counts(database) == (1, 10)


def test_rolled_back_transaction_leaves_nothing(database: Database) -> None:
    sid = _series_id(database)
    with pytest.raises(RuntimeError), database.session() as session:
        repository.insert_samples(
            session, np.full(2, sid), np.array([1, 2], dtype=np.int64) * 10**12, np.ones(2)
        )
        key = SeriesKey("c", "node", "n2", "cpu", "{}")
        repository.resolve_series(session, [(key, "%", {})])
        raise RuntimeError("simulated failure after the writes")
    assert counts(database) == (1, 0)


def test_timestamps_round_trip_to_the_microsecond(database: Database) -> None:
    moment = datetime(2024, 11, 16, 18, 0, 0, 999_999, tzinfo=UTC)
    assert from_epoch_us(to_epoch_us(moment)) == moment
    sid = _series_id(database)
    with database.session() as session:
        repository.insert_samples(session, np.array([sid]), np.array([to_epoch_us(moment)]), np.array([1.0]))
    with database.session() as session:
        _, first, last = repository.series_stats(session, sid)
    assert first == last == moment and first is not None and first.tzinfo is not None


def test_series_resolution_is_idempotent_and_checks_nothing_twice(database: Database) -> None:
    keys = [SeriesKey("c", "workload", f"w{i}", "rps", '{"zone":"a"}') for i in range(3)]
    specs = [(key, "req/s", {"zone": "a"}) for key in keys]
    with database.session() as session:
        first = repository.resolve_series(session, specs)
    with database.session() as session:
        second = repository.resolve_series(session, specs)
    assert all(first[k].created and not second[k].created and first[k].id == second[k].id for k in keys)
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM workloads")).scalar_one() == 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**6), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=300
    ),
    st.sampled_from([1, 7, 60, 3600]),
)
def test_bucketize_matches_a_direct_computation(points: list[tuple[int, float]], step: int) -> None:
    seconds = np.array([p[0] for p in points], dtype=np.int64)
    values = np.array([p[1] for p in points])
    buckets = bucketize(seconds * 1_000_000, values, step)
    assert buckets.count.sum() == len(points)
    for start, mean, high, p95, count in zip(
        buckets.start_seconds, buckets.mean, buckets.max, buckets.p95, buckets.count, strict=True
    ):
        inside = values[(seconds // step) * step == start]
        assert count == len(inside)
        assert mean == pytest.approx(inside.mean(), rel=1e-9, abs=1e-9)
        assert high == inside.max()
        assert p95 == pytest.approx(np.quantile(inside, 0.95), rel=1e-9, abs=1e-6)


@pytest.mark.parametrize(("span", "points"), [(604_800, 1000), (86_400, 24), (3_600, 5000), (10**8, 10)])
def test_nice_step_never_exceeds_max_points(span: int, points: int) -> None:
    step = nice_step(span, points)
    assert (span // step) + 1 <= points  # epoch-aligned buckets over the span


def test_after_commit_callbacks_run_only_once_the_work_is_committed(database: Database) -> None:
    """Metrics counted with `on_commit` include what was stored, before the unit of work returns, and
    never what a rollback undid."""
    sid = _series_id(database)
    seen: list[int] = []
    with database.session() as session:
        stored = repository.insert_samples(
            session, np.full(1, sid), np.array([1_700_000_000_000_000]), np.ones(1)
        )
        on_commit(session, lambda: seen.append(stored))
        assert seen == []  # not yet: the commit has not happened
    assert seen == [1]
    with pytest.raises(RuntimeError), database.session() as session:
        on_commit(session, lambda: seen.append(-1))
        raise RuntimeError("the batch failed")
    with database.session():
        pass  # a later unit of work does not inherit the rolled-back one's callbacks
    assert seen == [1]
