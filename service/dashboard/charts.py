"""Plotly figure specs (plain dicts, rendered by the locally served plotly.js): history, the forecast fan
(nested quantile bands around the median, clipped to the unit's range: no negative counts), budget lines,
the overview's small multiples (load, forecast band, replicas) and the savings chart. Every axis is
titled with its unit."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from service.forecasts.schemas import ForecastOut
from service.telemetry.schemas import SamplesOut
from service.telemetry.units import canonical_unit, is_non_negative

BANDS = (("0.05", "0.95", "90%", 0.15), ("0.1", "0.9", "80%", 0.25), ("0.25", "0.75", "50%", 0.4))
FAN_RGB = "31, 119, 180"


TIME_AXIS = "time (UTC)"


def _num(value: float | None, floor: float | None = None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value if floor is None else max(value, floor)


def floor_of(unit: str) -> float | None:
    """The lowest value the unit allows (0 for counts, watts, bytes, %…), None when negatives exist."""
    return 0.0 if is_non_negative(canonical_unit(unit) or unit) else None


def _iso(ts: datetime) -> str:
    return ts.isoformat()


def layout(title: str, unit: str, height: int = 320, x_title: str = TIME_AXIS) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 60, "r": 10, "t": 36, "b": 60},
        "xaxis": {"title": {"text": x_title, "standoff": 4}},
        "yaxis": {"title": {"text": unit or "value (no unit)"}, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.22, "yanchor": "top"},
        "hovermode": "x unified",
    }


def history_trace(samples: SamplesOut, name: str = "actual") -> dict[str, Any]:
    return {
        "type": "scatter", "mode": "lines", "name": name, "line": {"color": "#222", "width": 1.5},
        "x": [_iso(t) for t in samples.timestamps], "y": [_num(v) for v in samples.mean],
    }  # fmt: skip


def fan_traces(forecast: ForecastOut, floor: float | None = None, bands: tuple[Any, ...] = BANDS,
               ) -> list[dict[str, Any]]:  # fmt: skip
    """One filled band per quantile pair the forecast has (outermost first), then the median; values
    below `floor` (the unit's range) are drawn at the floor."""
    x = [_iso(p.timestamp) for p in forecast.points]
    levels = set(forecast.points[0].quantiles) if forecast.points else set()
    traces: list[dict[str, Any]] = []
    for low, high, label, alpha in bands:
        if low not in levels or high not in levels:
            continue
        fill = f"rgba({FAN_RGB}, {alpha})"
        lows = [_num(p.quantiles[low], floor) for p in forecast.points]
        highs = [_num(p.quantiles[high], floor) for p in forecast.points]
        traces.append(
            {"type": "scatter", "mode": "lines", "x": x, "y": lows, "line": {"width": 0},
             "showlegend": False, "hoverinfo": "skip", "name": f"q{low}"}
        )  # fmt: skip
        traces.append(
            {"type": "scatter", "mode": "lines", "x": x, "y": highs, "line": {"width": 0},
             "fill": "tonexty", "fillcolor": fill, "name": f"{label} interval"}
        )  # fmt: skip
    median = [_num(p.quantiles.get("0.5", p.mean), floor) for p in forecast.points]
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
        data.extend(fan_traces(forecast, floor_of(unit)))
    if samples is not None:
        data.append(history_trace(samples))
    xs = [t for trace in data for t in trace["x"]]
    if budget is not None and xs:
        data.append(budget_trace(budget, min(xs), max(xs)))
    return {"data": data, "layout": layout(title, unit)}


def small_multiple(
    title: str, unit: str, samples: SamplesOut | None, forecast: ForecastOut | None,
    replicas: list[tuple[datetime, int]],
) -> dict[str, Any]:  # fmt: skip
    """One workload at a glance: its load, the forecast's 80% band and median, and the replicas the
    loop asked for (right axis)."""
    data: list[dict[str, Any]] = []
    if forecast is not None:
        data.extend(fan_traces(forecast, floor_of(unit), bands=BANDS[1:2]))
    if samples is not None:
        data.append(history_trace(samples, "load"))
    figure = layout(title, unit, 240)
    figure["margin"] = {"l": 56, "r": 48, "t": 32, "b": 40}
    figure["showlegend"] = False
    return with_replicas({"data": data, "layout": figure}, replicas)


def with_replicas(figure: dict[str, Any], replicas: list[tuple[datetime, int]]) -> dict[str, Any]:
    """The figure with the replicas decisions asked for as a step line on a right-hand axis."""
    if not replicas:
        return figure
    figure["data"].append(
        {"type": "scatter", "mode": "lines+markers", "name": "replicas", "yaxis": "y2",
         "line": {"shape": "hv", "color": "#d35400", "width": 1.5}, "marker": {"size": 4},
         "x": [_iso(t) for t, _ in replicas], "y": [n for _, n in replicas]}
    )  # fmt: skip
    top = max(n for _, n in replicas)
    figure["layout"]["yaxis2"] = {"title": {"text": "replicas"}, "overlaying": "y", "side": "right",
                                  "range": [0, max(1.0, top * 1.15)], "dtick": max(1, math.ceil(top / 5)),
                                  "showgrid": False}  # fmt: skip
    figure["layout"]["margin"]["r"] = 48
    return figure


def savings_figure(comparison: dict[str, Any], curve: list[dict[str, Any]]) -> dict[str, Any]:
    """Replica-hours against SLA violations: HPA's target sweep as a curve, Foresight's and static
    peak's points (lower left is better)."""
    data: list[dict[str, Any]] = []
    points = sorted(curve, key=lambda p: p["replica_hours"])
    if points:
        data.append(
            {"type": "scatter", "mode": "lines+markers+text", "name": "HPA, target swept",
             "x": [p["replica_hours"] for p in points],
             "y": [100 * p["sla_violation_rate"] for p in points],
             "text": [f"u={p['target']:g}" for p in points], "textposition": "top right",
             "line": {"dash": "dash", "color": "#7f8c8d"}, "marker": {"color": "#7f8c8d"}}
        )  # fmt: skip
    styles = {"bayesian": ("Foresight (bayesian)", "#1f77b4", "star", 16),
              "hpa": ("HPA (configured target)", "#7f8c8d", "circle-open", 12),
              "static-peak": ("static peak", "#c0392b", "square", 11)}  # fmt: skip
    for policy, (label, color, symbol, size) in styles.items():
        if policy in comparison:
            row = comparison[policy]
            data.append(
                {"type": "scatter", "mode": "markers", "name": label,
                 "x": [row["replica_hours"]["mean"]], "y": [100 * row["sla_violation_rate"]["mean"]],
                 "marker": {"color": color, "symbol": symbol, "size": size}}
            )  # fmt: skip
    figure = layout("Replica-hours against SLA violations (lower left is better)",
                    "SLA violations (% of windows)", 380, "replica-hours")  # fmt: skip
    figure["hovermode"] = "closest"
    figure["xaxis"]["rangemode"] = "tozero"
    return {"data": data, "layout": figure}


def policy_bars(comparison: dict[str, Any], metric: str, title: str, unit: str, scale: float = 1.0,
                ) -> dict[str, Any]:  # fmt: skip
    names = list(comparison)
    colors = {"bayesian": "#1f77b4", "hpa": "#7f8c8d", "static-peak": "#c0392b"}
    bars = {"type": "bar", "x": names, "y": [scale * comparison[p][metric]["mean"] for p in names],
            "marker": {"color": [colors.get(p, "#95a5a6") for p in names]}}  # fmt: skip
    return {"data": [bars], "layout": layout(title, unit, 260, "policy")}
