"""`foresight replay run | policies | compare | sweep`: the replay simulator from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from replay.adapters import POLICIES
from replay.engine import run_replay
from replay.summary import SUMMARY_METRICS
from replay.sweep import compare_policies, grid, sweep
from replay.traces import TRACE_FORMATS, ReplayError

replay_app = typer.Typer(help="Replay traces through scaling policies in closed loop.", no_args_is_help=True)
console = Console()
TraceOpt = Annotated[Path, typer.Option("--trace", help="trace file (CSV)")]
FormatOpt = Annotated[str, typer.Option("--trace-format", help=f"one of {', '.join(TRACE_FORMATS)}")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="JSON or YAML config file (docs/replay.md)")]


def read_config(path: Path | None) -> dict[str, Any]:
    """A config file as a dict: JSON, or YAML when the suffix says so."""
    if path is None:
        return {}
    if not path.exists():
        raise ReplayError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:
        raise ReplayError(
            f"config file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ReplayError(f"config file {path} must hold a mapping at the top level")
    return data


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(2)


def _columns() -> tuple[Any, ...]:
    return (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


@replay_app.command("policies")
def policies() -> None:
    """List the policy names `run`, `compare` and `sweep` accept."""
    table = Table("policy", "what it runs")
    for name, what in POLICIES.items():
        table.add_row(name, what)
    console.print(table)


@replay_app.command("run")
def run(
    trace: TraceOpt,
    policy: Annotated[str, typer.Option("--policy", help="see `foresight replay policies`")],
    output: Annotated[
        Path, typer.Option("--output", help="directory for summary.json, timeline.csv, report.html")
    ],
    trace_format: FormatOpt = "azure-llm",
    config: ConfigOpt = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Replay one policy over a trace and write summary.json, timeline.csv and report.html."""
    try:
        cfg = read_config(config)
        with Progress(*_columns(), console=console) as bar:
            task = bar.add_task(f"replaying {policy}", total=100)
            summary = run_replay(
                trace, trace_format, policy, cfg, seed, output, lambda f: bar.update(task, completed=100 * f)
            )
    except ReplayError as exc:
        _fail(exc)
        return
    table = Table("metric", "value")
    for metric in SUMMARY_METRICS:
        table.add_row(metric, f"{summary[metric]:.6g}")
    console.print(table)
    console.print(f"wrote {output}/summary.json, timeline.csv, report.html")


@replay_app.command("compare")
def compare_cmd(
    trace: TraceOpt,
    policies_: Annotated[str, typer.Option("--policies", help="comma-separated policy names")],
    output: Annotated[Path, typer.Option("--output", help="directory for comparison.json and report.html")],
    trace_format: FormatOpt = "azure-llm",
    config: ConfigOpt = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1)] = 5,
) -> None:
    """Run several policies over seeds 0..N-1; comparison.json is {policy: {metric: {mean,std,min,max}}}."""
    names = [p.strip() for p in policies_.split(",") if p.strip()]
    try:
        cfg = read_config(config)
        for name in names:
            if name not in POLICIES:
                raise ReplayError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")
        with Progress(*_columns(), console=console) as bar:
            task = bar.add_task("policies x seeds", total=len(names) * seeds)
            table = compare_policies(
                trace, trace_format, names, cfg, seeds, output, lambda p, s: bar.advance(task)
            )
    except ReplayError as exc:
        _fail(exc)
        return
    view = Table("metric", *names)
    for metric in ("replica_hours", "sla_violation_rate", "p99_latency_s", "energy_kwh", "scaling_actions"):
        view.add_row(
            metric, *(f"{table[p][metric]['mean']:.4g} ± {table[p][metric]['std']:.2g}" for p in names)
        )
    console.print(view)
    console.print(f"wrote {output}/comparison.json and report.html")


@replay_app.command("sweep")
def sweep_cmd(
    traces: Annotated[list[str], typer.Option("--trace", help="FILE:FORMAT, repeatable")],
    policies_: Annotated[str, typer.Option("--policies")],
    output: Annotated[Path, typer.Option("--output", help="CSV of the gathered table")],
    config: ConfigOpt = None,
    settings: Annotated[Path | None, typer.Option("--settings", help="JSON {label: config overlay}")] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1)] = 3,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster; local when omitted")
    ] = None,
    num_cpus: Annotated[int | None, typer.Option("--num-cpus", help="CPUs of the local Ray")] = None,
) -> None:
    """Run traces x policies x seeds x settings on Ray and gather one table (CSV)."""
    try:
        pairs = []
        for item in traces:
            path, _, fmt = item.rpartition(":")
            if not path or fmt not in TRACE_FORMATS:
                raise ReplayError(f"--trace takes FILE:FORMAT with FORMAT in {TRACE_FORMATS}, got {item!r}")
            pairs.append((path, fmt))
        overlays = read_config(settings) if settings else {}
        cells = grid(pairs, [p.strip() for p in policies_.split(",")], seeds, overlays, read_config(config))
        with Progress(*_columns(), console=console) as bar:
            task = bar.add_task("sweep cells", total=len(cells))
            table = sweep(cells, ray_address, num_cpus, lambda: bar.advance(task))
    except ReplayError as exc:
        _fail(exc)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(output, index=False)
    console.print(
        table.groupby(["trace", "setting", "policy"])[["replica_hours", "sla_violation_rate"]].mean()
    )
    console.print(f"wrote {output} ({len(table)} rows)")
