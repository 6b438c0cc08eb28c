"""Plotly figure specs (plain dicts, rendered by the locally served plotly.js): history, the forecast fan
(nested quantile bands around the median) and budget lines."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from service.forecasts.schemas import ForecastOut
from service.telemetry.schemas import SamplesOut

BANDS = (("0.05", "0.95", "90%", 0.15), ("0.1", "0.9", "80%", 0.25), ("0.25", "0.75", "50%", 0.4))
FAN_RGB = "31, 119, 180"


def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _iso(ts: datetime) -> str:
    return ts.isoformat()


def layout(title: str, unit: str, height: int = 320) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 50, "r": 10, "t": 36, "b": 36},
        "yaxis": {"title": {"text": unit}, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "x unified",
    }


def history_trace(samples: SamplesOut, name: str = "actual") -> dict[str, Any]:
    return {
        "type": "scatter", "mode": "lines", "name": name, "line": {"color": "#222", "width": 1.5},
        "x": [_iso(t) for t in samples.timestamps], "y": [_num(v) for v in samples.mean],
    }  # fmt: skip


def fan_traces(forecast: ForecastOut) -> list[dict[str, Any]]:
    """One filled band per quantile pair the forecast has (outermost first), then the median."""
    x = [_iso(p.timestamp) for p in forecast.points]
    levels = set(forecast.points[0].quantiles) if forecast.points else set()
    traces: list[dict[str, Any]] = []
    for low, high, label, alpha in BANDS:
        if low not in levels or high not in levels:
            continue
        fill = f"rgba({FAN_RGB}, {alpha})"
        lows = [_num(p.quantiles[low]) for p in forecast.points]
        highs = [_num(p.quantiles[high]) for p in forecast.points]
        traces.append(
            {"type": "scatter", "mode": "lines", "x": x, "y": lows, "line": {"width": 0},
             "showlegend": False, "hoverinfo": "skip", "name": f"q{low}"}
        )  # fmt: skip
        traces.append(
            {"type": "scatter", "mode": "lines", "x": x, "y": highs, "line": {"width": 0},
             "fill": "tonexty", "fillcolor": fill, "name": f"{label} interval"}
        )  # fmt: skip
    median = [_num(p.quantiles.get("0.5", p.mean)) for p in forecast.points]
    traces.append(
        {"type": "scatter", "mode": "lines", "x": x, "y": median, "name": "forecast median",
         "line": {"color": f"rgb({FAN_RGB})", "dash": "dot"}}
    )  # fmt: skip
    return traces


def budget_trace(budget: float, start: str, end: str) -> dict[str, Any]:
    return {
        "type": "scatter", "mode": "lines", "name": "budget", "x": [start, end], "y": [budget, budget],
        "line": {"color": "#c0392b", "dash": "dash"},
    }  # fmt: skip


def forecast_figure(
    title: str,
    unit: str,
    samples: SamplesOut | None,
    forecast: ForecastOut | None,
    budget: float | None = None,
) -> dict[str, Any]:
    """History plus the forecast fan, and a budget line when there is one."""
    data: list[dict[str, Any]] = []
    if forecast is not None:
        data.extend(fan_traces(forecast))
    if samples is not None:
        data.append(history_trace(samples))
    xs = [t for trace in data for t in trace["x"]]
    if budget is not None and xs:
        data.append(budget_trace(budget, min(xs), max(xs)))
    return {"data": data, "layout": layout(title, unit)}


def bar_figure(title: str, unit: str, names: list[str], values: list[float | None]) -> dict[str, Any]:
    bars = {"type": "bar", "x": names, "y": [_num(v) for v in values], "marker": {"color": f"rgb({FAN_RGB})"}}
    return {"data": [bars], "layout": layout(title, unit, 260)}
