"""`foresight sources add prometheus --url … --match '…'` and `foresight backfill`: configure Prometheus
sources and pull their history (chunked, resumable, with a progress bar)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from service.config import get_settings
from service.db import Database
from service.errors import ForesightError
from service.integrations import backfill as backfill_module
from service.integrations.sources import Source, SourceStore
from service.timeparse import parse_duration, parse_time

sources_app = typer.Typer(help="Metric sources to backfill from (Prometheus).", no_args_is_help=True)
add_app = typer.Typer(help="Add a source.", no_args_is_help=True)
sources_app.add_typer(add_app, name="add")
console = Console(stderr=True)


def _store() -> SourceStore:
    return SourceStore(get_settings().sources_path)


def _fail(error: ForesightError) -> None:
    console.print(f"[red]error:[/red] {error.message}")
    raise typer.Exit(2)


@add_app.command("prometheus")
def add_prometheus(
    url: Annotated[str, typer.Option(help="Prometheus base URL, e.g. http://prometheus:9090")],
    match: Annotated[list[str], typer.Option(help="Series selector, repeatable: '{job=\"node\"}'")],
    name: Annotated[str, typer.Option(help="Name of the source")] = "prometheus",
    label: Annotated[
        list[str] | None, typer.Option(help="name=value added to every series (default: external labels)")
    ] = None,
    token_env: Annotated[
        str | None, typer.Option(help="Environment variable holding a bearer token for Prometheus")
    ] = None,
) -> None:
    """Add (or replace) a Prometheus source; its backfill progress starts over."""
    try:
        labels = {}
        for item in label or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise backfill_module.SourceError(f"--label {item!r} must look like name=value")
            labels[key] = value
        _store().add(Source(name=name, url=url, match=list(match), labels=labels, token_env=token_env))
    except ForesightError as error:
        _fail(error)
    console.print(f"source {name!r}: {url} matching {', '.join(match)}")


@sources_app.command("list")
def list_sources() -> None:
    """Print the sources and their backfill progress as JSON lines."""
    store = _store()
    for source in store.all():
        progress = store.progress(source.name)
        typer.echo(json.dumps({**source.__dict__, "progress": progress.__dict__ if progress else None}))


@sources_app.command("remove")
def remove_source(name: Annotated[str, typer.Argument(help="Source name")]) -> None:
    """Forget a source and its progress (stored samples stay)."""
    try:
        _store().remove(name)
    except ForesightError as error:
        _fail(error)


def backfill(
    source: Annotated[str | None, typer.Option(help="Source name (default: every source)")] = None,
    since: Annotated[str, typer.Option(help="How far back: 14d, 12h, … (ignored when --start)")] = "14d",
    start: Annotated[str | None, typer.Option(help="Start, RFC 3339 or epoch seconds")] = None,
    end: Annotated[str | None, typer.Option(help="End, RFC 3339 or epoch seconds (default: now)")] = None,
    chunk: Annotated[str, typer.Option(help="Time per query and transaction")] = "1h",
    step: Annotated[
        str | None, typer.Option(help="Resample with query_range at this step (default: raw samples)")
    ] = None,
    counters: Annotated[
        str | None, typer.Option(help="rate: also store counters as per-second rates")
    ] = None,
    restart: Annotated[bool, typer.Option(help="Ignore saved progress and start over")] = False,
) -> None:
    """Pull history from Prometheus; resumes an interrupted run, or catches up a finished one."""
    settings = get_settings()
    store = SourceStore(settings.sources_path)
    database = Database(settings)
    try:
        names = [source] if source else [s.name for s in store.all()]
        if not names:
            raise backfill_module.SourceError("no sources; add one with `foresight sources add prometheus …`")
        until = parse_time(end, "end").timestamp() if end else time.time()
        begin = parse_time(start, "start").timestamp() if start else until - parse_duration(since, "since")
        window = backfill_module.Window(
            begin, until, parse_duration(chunk, "chunk"), parse_duration(step, "step") if step else None
        )
        rates = settings.counters_as_rates if counters is None else counters == "rate"
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            for name in names:
                task = bar.add_task(f"backfilling {name}", total=None)

                def advance(done: int, total: int, _until: float, task: TaskID = task) -> None:
                    bar.update(task, completed=done, total=total)

                report = backfill_module.run(
                    database, settings, store, name, window, rates=rates, restart=restart, on_chunk=advance
                )
                typer.echo(json.dumps(report.__dict__))
    except ForesightError as error:
        _fail(error)
    finally:
        database.dispose()
