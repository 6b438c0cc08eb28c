"""Compare several policies over seeds, and sweep a grid of traces x policies x seeds x settings on Ray.

`compare_policies` runs locally with a progress callback; `sweep` sends one Ray task per grid cell (a
local Ray started with `num_cpus` when no address is given, `ray_address` for a cluster) and gathers one
table. Each task returns its summary only (no files), so results travel light.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from replay.engine import run_replay, simulate, validate_config
from replay.report import write_report
from replay.summary import SUMMARY_METRICS, compare, summarise
from replay.traces import ReplayError, load_trace


def _trace(path: str | Path, fmt: str, config: dict[str, Any]) -> Any:
    return load_trace(
        path,
        fmt,
        float(config.get("step_seconds", 10.0)),
        float(config.get("speed", 1.0)),
        int(config.get("tile", 1)),
    )


def compare_policies(
    trace_path: str | Path,
    trace_format: str,
    policies: Sequence[str],
    config: dict[str, Any] | None = None,
    seeds: int = 5,
    output_dir: str | Path | None = None,
    advance: Callable[[str, int], None] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Run every policy for seeds 0..seeds-1; write comparison.json + report.html (first seed of each)."""
    import json

    config = validate_config(config or {})
    if not policies:
        raise ReplayError("give at least one policy to compare")
    trace = _trace(trace_path, trace_format, config)
    runs: dict[str, list[dict[str, Any]]] = {}
    shown: dict[str, tuple[dict[str, Any], Any]] = {}
    for policy in policies:
        for seed in range(seeds):
            rec, facts = simulate(trace, policy, config, seed)
            summary = summarise(trace, policy, seed, config, rec, facts)
            runs.setdefault(policy, []).append(summary)
            if seed == 0:
                shown[policy] = (summary, rec)
            if advance is not None:
                advance(policy, seed)
    table = compare(runs)
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "comparison.json").write_text(json.dumps(table, indent=2))
        (out / "runs.json").write_text(json.dumps(runs, indent=2, default=str))
        write_report(out / "report.html", shown, trace.step_seconds)
    return table


def _one(cell: dict[str, Any]) -> dict[str, Any]:
    summary = run_replay(cell["trace"], cell["format"], cell["policy"], cell["config"], cell["seed"], None)
    row = {k: cell[k] for k in ("trace", "policy", "seed", "setting")}
    row.update({m: summary[m] for m in SUMMARY_METRICS})
    return row


def grid(
    traces: Sequence[tuple[str, str]],
    policies: Sequence[str],
    seeds: int,
    settings: dict[str, dict[str, Any]],
    base: dict[str, Any],
) -> list[dict[str, Any]]:
    """Grid cells: every (trace, format) x policy x seed x named setting (a config overlay)."""
    cells = []
    for (path, fmt), policy, seed, (label, overlay) in itertools.product(
        traces, policies, range(seeds), settings.items() or [("base", {})]
    ):
        config = copy.deepcopy(base)
        for key, value in overlay.items():
            if isinstance(value, dict):
                config.setdefault(key, {}).update(value)
            else:
                config[key] = value
        cells.append(
            {
                "trace": str(path),
                "format": fmt,
                "policy": policy,
                "seed": seed,
                "setting": label,
                "config": config,
            }
        )
    return cells


def sweep(
    cells: list[dict[str, Any]],
    ray_address: str | None = None,
    num_cpus: int | None = None,
    advance: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """Run every cell as a Ray task; one row per cell (trace, policy, seed, setting, metrics)."""
    import ray

    for cell in cells:
        validate_config(cell["config"])
    started = not ray.is_initialized()
    if started:
        if ray_address:
            ray.init(address=ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(_one)
        pending = [task.remote(c) for c in cells]
        rows = []
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            rows.extend(ray.get(done))
            if advance is not None:
                advance()
    finally:
        if started:
            ray.shutdown()
    return pd.DataFrame(rows).sort_values(["trace", "setting", "policy", "seed"]).reset_index(drop=True)
