"""Forecast speed: fit + predict of 1,000 series x 2,016 points (one week at 5 min), horizon 12, per model.

The series are seeded synthetic load curves (daily cycle with per-series level, amplitude, phase, trend and
noise, plus occasional spikes), so the run is reproducible anywhere. Prints seconds per 1,000 series for
fit, predict and both, and for the default model (`auto`, search included) the ratio to the 60 s goal and
which candidates its time budget let in.

    .venv/bin/python bench/forecast_speed.py [--models a,b] [--series 1000] [--points 2016] [--horizon 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from forecasting import DEFAULT_MODEL, available_models, create_forecaster  # noqa: E402

SKIP_BY_DEFAULT = {"tft", "deepar", "power", "interference"}  # slow deep models / domain wrappers
console = Console()


def synthetic_frame(n_series: int, n_points: int, seed: int = 0) -> pd.DataFrame:
    """Long frame of `n_series` daily-cycle load series at 5 min."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    day = 288
    level = rng.uniform(10, 80, (n_series, 1))
    amp = level * rng.uniform(0.1, 0.5, (n_series, 1))
    phase = rng.uniform(0, 2 * np.pi, (n_series, 1))
    trend = rng.normal(0, 0.002, (n_series, 1)) * level
    noise = rng.normal(0, 1, (n_series, n_points)) * level * rng.uniform(0.02, 0.1, (n_series, 1))
    spikes = (rng.random((n_series, n_points)) < 0.002) * level * rng.uniform(0.5, 2, (n_series, n_points))
    values = np.maximum(
        level + amp * np.sin(2 * np.pi * t / day + phase) + trend * t / day + noise + spikes, 0
    )
    ts = pd.date_range("2024-01-01", periods=n_points, freq="5min", tz="UTC")
    return pd.DataFrame({
        "series_id": np.repeat([f"s{i:04d}" for i in range(n_series)], n_points),
        "ts": np.tile(ts, n_series),
        "value": values.reshape(-1),
    })  # fmt: skip


def measure(name: str, frame: pd.DataFrame, horizon: int) -> tuple[float, float, float, dict | None]:
    probe = create_forecaster(name).get_params()
    config: dict[str, object] = {"freq": "5min"}
    if "horizon" in probe:
        config["horizon"] = horizon
    if "max_horizon" in probe and int(probe["max_horizon"]) < horizon:
        config["max_horizon"] = horizon
    model = create_forecaster(name, **config)
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(frame)
    fitted = time.perf_counter()
    forecast = model.predict(horizon)
    done = time.perf_counter()
    assert len(forecast) == frame["series_id"].nunique() * horizon
    cpu = time.process_time() - cpu  # CPU seconds of all this process's threads: robust to a busy machine
    describe = getattr(model, "describe", None)
    return fitted - start, done - fitted, cpu, describe() if callable(describe) else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", help="Comma-separated registry names (default: all but deep/domain)")
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--points", type=int, default=2016)
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument(
        "--goal", type=float, default=60.0, help="Seconds the default model should stay under"
    )
    args = parser.parse_args()
    models = (
        args.models.split(",") if args.models else [m for m in available_models() if m not in SKIP_BY_DEFAULT]
    )
    unknown = [m for m in models if m not in available_models()]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; available: {', '.join(available_models())}")
    frame = synthetic_frame(args.series, args.points)
    per_1000 = 1000.0 / args.series
    title = (
        f"{args.series:,} series x {args.points:,} points, horizon {args.horizon} (seconds per 1,000 series)"
    )
    table = Table("model", "fit s", "predict s", "fit+predict s", "CPU s (all threads)", title=title)
    notes: list[str] = []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        for name in models:
            task = progress.add_task(f"fitting and predicting {name}")
            try:
                fit_s, pred_s, cpu_s, described = measure(name, frame, args.horizon)
            except Exception as exc:  # report and go on with the other models
                table.add_row(name, f"[red]failed: {type(exc).__name__}: {str(exc)[:60]}[/red]", "", "", "")
                continue
            finally:
                progress.remove_task(task)
            label = f"{name} (default)" if name == DEFAULT_MODEL else name
            cells = (fit_s * per_1000, pred_s * per_1000, (fit_s + pred_s) * per_1000)
            table.add_row(label, *(f"{c:.2f}" for c in cells), f"{cpu_s * per_1000:.2f}")
            if described is not None:
                notes.append(
                    f"{name}: members {described['members']}, pooled weights {described['weights']}, "
                    f"skipped {described['skipped'] or 'none'}"
                )
            if name == DEFAULT_MODEL:
                total = fit_s + pred_s
                notes.append(
                    f"{name}: {total:.1f} s for {args.series:,} series = {total / args.goal:.2f}x the "
                    f"{args.goal:g} s goal ({'met' if total <= args.goal else 'missed'}); CPU {cpu_s:.1f} s, "
                    f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
                )
    console.print(table)
    for note in notes:
        console.print(note)


if __name__ == "__main__":
    main()
