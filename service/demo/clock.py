"""The demo's time axis: each series' values are laid on a regular grid that ends in the present.

Index `k` of a series holds `values[k mod n]` (traces repeat end to end) at `anchor + k * step / speed`:
`speed` > 1 compresses time (a 5-minute trace step becomes 30 s at speed 10), so every stored timestamp
is still real and never in the future. At start the history — the first 90% of the trace (two laps for
a trace shorter than a day) — lies in the past, and the first streamed sample is due a few seconds after
start, so forecasts can be checked against what comes next within the first minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.demo.catalog import DemoSeries

FIRST_SAMPLE_LEAD_SECONDS = 20.0
SHORT_TRACE_SECONDS = 86_400.0


@dataclass
class Track:
    """Where one series stands: its grid and the next index to stream."""

    series: DemoSeries
    anchor: float
    step: float
    next_index: int

    def time_of(self, index: int) -> float:
        return self.anchor + index * self.step

    def value_of(self, index: int) -> float:
        values = self.series.values
        return float(values[index % len(values)])

    def due(self, now: float, limit: int) -> list[tuple[float, float]]:
        """Samples whose time has come (at most `limit`, the newest when more are due); advances."""
        last = int((now - self.anchor) // self.step)
        if last < self.next_index:
            return []
        first = max(self.next_index, last - limit + 1)
        self.next_index = last + 1
        return [(round(self.time_of(k), 3), self.value_of(k)) for k in range(first, last + 1)]


def first_stream_index(series: DemoSeries) -> int:
    n = len(series.values)
    return n - max(1, n // 10)


def history_length(series: DemoSeries) -> int:
    k0 = first_stream_index(series)
    short = len(series.values) * series.step_seconds < SHORT_TRACE_SECONDS
    return k0 + (len(series.values) if short else 0)


def new_track(series: DemoSeries, start: float, speed: float) -> Track:
    """A track whose first streamed sample is due shortly after `start`."""
    step = series.step_seconds / speed
    k0 = first_stream_index(series)
    anchor = start + min(step, FIRST_SAMPLE_LEAD_SECONDS) - k0 * step
    return Track(series, anchor, step, k0)


def history(track: Track) -> list[tuple[float, float]]:
    k0 = first_stream_index(track.series)
    return [
        (round(track.time_of(k), 3), track.value_of(k)) for k in range(k0 - history_length(track.series), k0)
    ]


def resumed_track(series: DemoSeries, anchor: float, step: float, last_ts: float | None, now: float,
                  speed: float) -> Track:  # fmt: skip
    """The track of a series streamed before this start: same grid when the speed is unchanged,
    otherwise the next index re-anchored to be due shortly after `now`."""
    last = round((last_ts - anchor) / step) if last_ts is not None else first_stream_index(series) - 1
    new_step = series.step_seconds / speed
    if abs(new_step - step) < 1e-9:
        return Track(series, anchor, step, last + 1)
    new_anchor = now + min(new_step, FIRST_SAMPLE_LEAD_SECONDS) - (last + 1) * new_step
    return Track(series, new_anchor, new_step, last + 1)
