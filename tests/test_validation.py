"""Batch validation without a database: every bad series is reported with its own first bad sample, and
valid batches come through exactly (property test)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import InvalidInput
from service.telemetry.validation import ParsedBatch, parse_batch
from tests.helpers import T0, batch, series


def _parse(payload: object) -> ParsedBatch:
    return parse_batch(payload, max_samples=10_000, max_future_seconds=600, now=T0 + 10_000)


def test_each_bad_series_reports_its_first_problem() -> None:
    payload = batch(
        series("a", samples=[[T0, 1.0], [T0 + 1, float("nan")], [T0 + 2, float("inf")]]),
        series("b", samples=[[T0, 1.0]]),
        series("c", samples=[[T0, "x"], [T0 + 1, -1.0]]),
        series("d", samples=[[T0, 1.0], [T0, 2.0]]),
        series("e", unit="parsecs"),
    )
    with pytest.raises(InvalidInput) as raised:
        _parse(payload)
    found = {(d["series"], d["sample"], d["field"]) for d in raised.value.details}
    assert found == {(0, 1, "value"), (2, 0, "value"), (4, None, "unit")}  # d is checked once the rest pass
    assert "and 2 more problems" in raised.value.message


def test_repeat_is_reported_at_the_later_sample() -> None:
    with pytest.raises(InvalidInput) as raised:
        _parse(batch(series("a", samples=[[T0 + 5, 1.0], [T0, 1.0], [T0 + 9, 1.0], [T0 + 5, 2.0]])))
    assert (raised.value.details[0]["series"], raised.value.details[0]["sample"]) == (0, 3)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 5000), st.floats(0, 1e9, allow_nan=False)), min_size=1, max_size=30,
                 unique_by=lambda pair: pair[0]),
        min_size=1, max_size=8,
    )
)  # fmt: skip
def test_valid_batches_come_through_exactly(groups: list[list[tuple[int, float]]]) -> None:
    payload = batch(*(series(f"n{i}", samples=[[T0 + t, v] for t, v in g]) for i, g in enumerate(groups)))
    parsed = _parse(payload)
    expected_owner = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    assert np.array_equal(parsed.owner, expected_owner)
    assert parsed.ts_us.tolist() == [(T0 + t) * 1_000_000 for g in groups for t, _ in g]
    assert parsed.values.tolist() == [v for g in groups for _, v in g]
