"""report.html: load vs capacity with forecast bands, latency vs SLO, power vs budget — one page, offline.

The plotly.js bundled in the `plotly` Python package is inlined once (`include_plotlyjs=True`), so the
page opens with no network. Several runs (compare) are drawn side by side on the same axes.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from replay.summary import SUMMARY_METRICS

MAX_POINTS = 4000
"""Long runs are thinned to this many points per line (every n-th step) to keep the page light."""


def _thin(n: int) -> slice:
    return slice(None, None, max(n // MAX_POINTS, 1))


def figure(runs: dict[str, tuple[dict[str, Any], Any]], step_seconds: float) -> go.Figure:
    """Three stacked panels sharing the time axis (hours)."""
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=("load vs capacity (replica units)", "p99 latency vs SLO (s)", "power vs budget (kW)"),
    )
    first = True
    for policy, (summary, rec) in runs.items():
        a = rec.arrays
        cut = _thin(rec.steps)
        hours = (np.arange(rec.steps) * step_seconds / 3600.0)[cut]
        if first:
            fig.add_trace(
                go.Scatter(x=hours, y=a["load"].sum(axis=1)[cut], name="load", line={"color": "black"}), 1, 1
            )
        if np.isfinite(a["band_mid"]).any():
            fig.add_trace(
                go.Scatter(
                    x=hours,
                    y=a["band_hi"][cut],
                    name=f"{policy} forecast q95",
                    line={"width": 0},
                    showlegend=False,
                ),
                1,
                1,
            )
            fig.add_trace(
                go.Scatter(
                    x=hours,
                    y=a["band_lo"][cut],
                    name=f"{policy} forecast 90% band",
                    fill="tonexty",
                    line={"width": 0},
                ),
                1,
                1,
            )
        fig.add_trace(go.Scatter(x=hours, y=a["capacity"].sum(axis=1)[cut], name=f"{policy} capacity"), 1, 1)
        fig.add_trace(go.Scatter(x=hours, y=a["p99"][cut], name=f"{policy} p99 latency"), 2, 1)
        fig.add_trace(go.Scatter(x=hours, y=a["power"][cut] / 1000.0, name=f"{policy} power"), 3, 1)
        if first:
            fig.add_hline(y=float(summary["slo_seconds"]), line_dash="dash", line_color="red", row=2, col=1)
            fig.add_hline(y=summary["power_budget_kw"], line_dash="dash", line_color="red", row=3, col=1)
        first = False
    fig.update_xaxes(title_text="hours", row=3, col=1)
    fig.update_layout(height=950, template="plotly_white", legend={"orientation": "h"})
    return fig


def _table(runs: dict[str, tuple[dict[str, Any], Any]]) -> str:
    head = "".join(f"<th>{html.escape(p)}</th>" for p in runs)
    rows = []
    for metric in SUMMARY_METRICS:
        cells = "".join(f"<td>{float(s[metric]):.4g}</td>" for s, _ in runs.values())
        rows.append(f"<tr><th>{metric}</th>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def write_report(path: Path, runs: dict[str, tuple[dict[str, Any], Any]], step_seconds: float) -> None:
    """Write one self-contained HTML page for one run or several (the first seed of each policy)."""
    body = figure(runs, step_seconds).to_html(full_html=False, include_plotlyjs=True)
    first = next(iter(runs.values()))[0]
    title = f"Foresight replay: {html.escape(str(first['trace']))}"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style></head><body>
<h1>{title}</h1><p>SLO: {html.escape(str(first["slo"]))};
power policy {html.escape(str(first["power_policy"]))};
{first["nodes"]} nodes in {first["power_domains"]} power domains. Assumptions: docs/replay.md.</p>
{_table(runs)}{body}</body></html>"""
    path.write_text(page, encoding="utf-8")
