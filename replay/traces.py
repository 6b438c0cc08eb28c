"""Traces the replay reads, binned onto the simulation grid (steps x workloads).

Two formats:

* `azure-llm`: one request per row (`TIMESTAMP, ContextTokens, GeneratedTokens`, as in the Azure LLM
  inference trace 2023); one workload. Requests keep their own token counts so latency is per request.
* `long`: a load series per workload (`series,timestamp,value[,metric]`, docs/architecture.md §5, or
  `timestamp,value` for one series) such as CPU % or requests/s; the value holds until the next sample.

`speed` compresses (> 1) or stretches (< 1) time; `tile` repeats the trace end to end for a longer run.
Everything is relative to the trace's first timestamp (the simulation starts at t = 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

TRACE_FORMATS = ("azure-llm", "long")


class ReplayError(Exception):
    """A replay cannot run: a bad trace, configuration or policy name (the message says how to fix it)."""


@dataclass
class Requests:
    """Individual requests of an `azure-llm` trace: arrival second, prompt and output tokens."""

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray


@dataclass
class Trace:
    """A trace on the simulation grid: `load[s, w]` per step and workload, plus the requests if any."""

    name: str
    format: str
    step_seconds: float
    workloads: list[str]
    load: np.ndarray
    """`long`: the series value held over each step. `azure-llm`: requests arriving per second."""
    requests: Requests | None = None
    meta: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return int(self.load.shape[0])

    @property
    def duration_s(self) -> float:
        return self.steps * self.step_seconds


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ReplayError(f"trace file {path} does not exist")
    try:
        return pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise ReplayError(f"trace file {path} is not a readable CSV: {exc}") from exc


def _check_knobs(step_seconds: float, speed: float, tile: int) -> None:
    if not (step_seconds > 0 and np.isfinite(step_seconds)):
        raise ReplayError(f"step_seconds must be a positive number, got {step_seconds!r}")
    if not (speed > 0 and np.isfinite(speed)):
        raise ReplayError(f"speed must be a positive number (2 = twice as fast), got {speed!r}")
    if int(tile) < 1:
        raise ReplayError(f"tile must be an integer >= 1, got {tile!r}")


def load_azure_llm(path: str | Path, step_seconds: float = 10.0, speed: float = 1.0, tile: int = 1) -> Trace:
    """Read an Azure LLM request trace; arrivals are relative to the first request, divided by `speed`."""
    _check_knobs(step_seconds, speed, tile)
    path = Path(path)
    raw = _read_csv(path)
    needed = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"}
    if missing := needed - set(raw.columns):
        raise ReplayError(
            f"{path.name}: an azure-llm trace needs columns {sorted(needed)}; missing {sorted(missing)} "
            f"(got {list(raw.columns)}). For a load series use --trace-format long."
        )
    if raw.empty:
        raise ReplayError(f"{path.name}: the trace has no requests")
    ts = pd.to_datetime(raw["TIMESTAMP"], format="mixed", errors="coerce")
    prompt = pd.to_numeric(raw["ContextTokens"], errors="coerce").to_numpy(dtype=float)
    output = pd.to_numeric(raw["GeneratedTokens"], errors="coerce").to_numpy(dtype=float)
    bad = ts.isna().to_numpy() | ~np.isfinite(prompt) | ~np.isfinite(output) | (prompt < 0) | (output < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ReplayError(
            f"{path.name}: row {row + 2} has an unreadable TIMESTAMP or a negative/non-numeric token count"
        )
    order = np.argsort(ts.to_numpy(), kind="stable")
    seconds = (ts - ts.min()).dt.total_seconds().to_numpy()[order] / speed
    prompt, output = prompt[order], np.maximum(output[order], 1.0)
    span = float(seconds[-1]) + step_seconds  # one trace period, so tiles do not overlap
    steps_one = int(np.ceil(span / step_seconds))
    period = steps_one * step_seconds
    arrivals = np.concatenate([seconds + k * period for k in range(tile)])
    requests = Requests(arrivals, np.tile(prompt, tile), np.tile(output, tile))
    steps = steps_one * tile
    counts = np.bincount((arrivals // step_seconds).astype(int), minlength=steps)[:steps]
    load = (counts / step_seconds)[:, None].astype(float)
    return Trace(
        name=path.name,
        format="azure-llm",
        step_seconds=step_seconds,
        workloads=[path.name.split(".")[0]],
        load=load,
        requests=requests,
        meta={"rows": len(raw), "speed": speed, "tile": tile},
    )


def load_long(path: str | Path, step_seconds: float = 10.0, speed: float = 1.0, tile: int = 1) -> Trace:
    """Read a long load series file; each series becomes a workload, held constant between samples."""
    _check_knobs(step_seconds, speed, tile)
    path = Path(path)
    raw = _read_csv(path)
    if "timestamp" not in raw.columns or "value" not in raw.columns:
        raise ReplayError(
            f"{path.name}: a long trace needs columns series,timestamp,value (or timestamp,value); "
            f"got {list(raw.columns)}. For a request trace use --trace-format azure-llm."
        )
    if "series" not in raw.columns:
        raw = raw.assign(series=path.name.split(".")[0])
    if "metric" in raw.columns and raw["metric"].nunique() > 1:
        raise ReplayError(f"{path.name}: one metric per trace please; found {sorted(raw['metric'].unique())}")
    ts = pd.to_datetime(raw["timestamp"], utc=True, format="mixed", errors="coerce")
    values = pd.to_numeric(raw["value"], errors="coerce")
    bad = ts.isna() | values.isna() | ~np.isfinite(values) | (values < 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ReplayError(
            f"{path.name}: row {row + 2} has an unreadable timestamp or a negative/missing value"
        )
    frame = pd.DataFrame({"series": raw["series"].astype(str), "ts": ts, "value": values.astype(float)})
    start = frame["ts"].min()
    frame["sec"] = (frame["ts"] - start).dt.total_seconds() / speed
    native = float(frame.groupby("series")["sec"].diff().median() or step_seconds)
    span = float(frame["sec"].max()) + max(native, step_seconds)
    steps_one = max(int(np.ceil(span / step_seconds)), 1)
    grid = np.arange(steps_one) * step_seconds
    workloads = sorted(frame["series"].unique())
    load = np.zeros((steps_one, len(workloads)))
    for j, name in enumerate(workloads):
        one = frame[frame["series"] == name].sort_values("sec")
        idx = np.searchsorted(one["sec"].to_numpy(), grid, side="right") - 1
        vals = one["value"].to_numpy()
        load[:, j] = np.where(idx >= 0, vals[np.clip(idx, 0, None)], vals[0])
    return Trace(
        name=path.name,
        format="long",
        step_seconds=step_seconds,
        workloads=workloads,
        load=np.tile(load, (tile, 1)),
        meta={"rows": len(raw), "speed": speed, "tile": tile, "native_step_seconds": native},
    )


def load_trace(
    path: str | Path, trace_format: str, step_seconds: float = 10.0, speed: float = 1.0, tile: int = 1
) -> Trace:
    """Read a trace in one of `TRACE_FORMATS`."""
    if trace_format == "azure-llm":
        return load_azure_llm(path, step_seconds, speed, tile)
    if trace_format == "long":
        return load_long(path, step_seconds, speed, tile)
    raise ReplayError(f"unknown trace format {trace_format!r}; use one of {', '.join(TRACE_FORMATS)}")
