"""Vectorised checks of every sample of a batch at once: one numpy table for all series, each check a
mask, each problem mapped back to its series and sample index (only the first problem per series is
reported). Per-element Python runs only on the error path or for RFC 3339 strings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

from service.telemetry.units import is_non_negative

if TYPE_CHECKING:
    from service.telemetry.validation import ParsedSeries, Problems

NUMBER_TYPES = {int, float}


class _Checker:
    """Samples of all series as one table, with the bookkeeping to report problems per series."""

    def __init__(self, headers: list[ParsedSeries], problems: Problems) -> None:
        self.headers = headers
        self.problems = problems
        lengths = np.array([len(h.samples) for h in headers], dtype=np.int64)
        self.offsets = np.r_[0, np.cumsum(lengths)]
        self.owner = np.repeat(np.arange(len(headers), dtype=np.int64), lengths)
        self.failed = np.zeros(len(headers), dtype=bool)

    def report(self, bad: np.ndarray, fld: str, problem: Callable[[int], str]) -> None:
        """Report the first flagged sample of each series still without a problem."""
        bad = bad & ~self.failed[self.owner]
        positions = np.flatnonzero(bad)
        if positions.size == 0:
            return
        owners, first = np.unique(self.owner[positions], return_index=True)
        for owner, flat in zip(owners.tolist(), positions[first].tolist(), strict=True):
            header = self.headers[owner]
            sample = flat - int(self.offsets[owner])
            self.problems.add(header.index, sample, fld, problem(flat), header.key.describe())
        self.failed[owners] = True

    def malformed(self) -> None:
        for position, header in enumerate(self.headers):
            sample = _first_malformed_sample(header.samples)
            if sample is not None:
                self.problems.add(header.index, sample, "sample", "must be a [timestamp, value] pair",
                                  header.key.describe())  # fmt: skip
                self.failed[position] = True


def check_samples(
    headers: list[ParsedSeries], problems: Problems, latest: float, future: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(owner, ts_us, values) for all samples, or None after reporting problems."""
    checker = _Checker(headers, problems)
    table = np.array(list(chain.from_iterable(h.samples for h in headers)), dtype=object)
    if table.ndim != 2 or table.shape[1] != 2:
        checker.malformed()
        return None
    values = _numbers(checker, table[:, 1])
    checker.report(
        ~np.isfinite(values), "value", lambda i: f"is {values[i]} (NaN and infinity are not allowed)"
    )
    non_negative = np.array([is_non_negative(h.unit) for h in headers])[checker.owner]
    units = [h.unit for h in headers]
    checker.report(
        non_negative & (values < 0), "value",
        lambda i: f"is {values[i]}, negative for a unit ({units[checker.owner[i]]}) that cannot be",
    )  # fmt: skip
    seconds = _timestamps(checker, table[:, 0])
    checker.report(seconds < 0, "timestamp", lambda i: "is before 1970-01-01")
    checker.report(
        seconds > latest, "timestamp",
        lambda i: f"is more than {future} s in the future"
        + (" (it looks like milliseconds; send seconds)" if seconds[i] > 1e11 else ""),
    )  # fmt: skip
    if checker.failed.any():
        return None
    ts_us = np.rint(seconds * 1e6).astype(np.int64)
    order = np.lexsort((ts_us, checker.owner))
    repeats = (np.diff(checker.owner[order]) == 0) & (np.diff(ts_us[order]) == 0)
    later = np.zeros(len(ts_us), dtype=bool)
    later[order[1:][repeats]] = True
    checker.report(later, "timestamp", lambda i: "repeats an earlier timestamp of the same series")
    if checker.failed.any():
        return None
    return checker.owner, ts_us, values


def _numbers(checker: _Checker, column: np.ndarray) -> np.ndarray:
    """Values as float64; non-numbers (strings, booleans, null) are reported and read as NaN."""
    if not set(map(type, column)) <= NUMBER_TYPES:
        wrong = np.fromiter((type(v) not in NUMBER_TYPES for v in column), dtype=bool, count=len(column))
        checker.report(wrong, "value", lambda i: f"must be a number, got {type(column[i]).__name__}")
        column = column.copy()
        column[wrong] = 0.0
    return column.astype(np.float64)


def _timestamps(checker: _Checker, column: np.ndarray) -> np.ndarray:
    """Epoch seconds as float64; RFC 3339 strings are parsed one by one only when present."""
    if set(map(type, column)) <= NUMBER_TYPES:
        seconds = column.astype(np.float64)
    else:
        seconds = np.fromiter((_seconds_of(stamp) for stamp in column), dtype=np.float64, count=len(column))
    checker.report(
        ~np.isfinite(seconds), "timestamp",
        lambda i: f"{column[i]!r} is neither epoch seconds nor an RFC 3339 time with an offset",
    )  # fmt: skip
    return np.where(np.isfinite(seconds), seconds, 0.0)


def _seconds_of(stamp: Any) -> float:
    if type(stamp) in NUMBER_TYPES:
        return float(stamp)
    if isinstance(stamp, str):
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            return float("nan")
        if moment.tzinfo is not None:
            return moment.timestamp()
    return float("nan")


def _first_malformed_sample(samples: list[Any]) -> int | None:
    for position, sample in enumerate(samples):
        if not isinstance(sample, list | tuple) or len(sample) != 2:
            return position
        if any(isinstance(part, list | tuple | dict) for part in sample):
            return position
    return None
