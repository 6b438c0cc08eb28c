"""The `foresight` command line (typer): serve, db, ingest, keys, and the sub-commands of
`service/cli_lazy.py` (forecast, mitigation, loop, sources, replay, backfill), imported only when used so
commands that need no model library start fast. Every command honours FORESIGHT_DATABASE_URL."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from service import migrate
from service.auth import service as auth_service
from service.auth.keys import SCOPES
from service.backup_cli import backup as db_backup
from service.backup_cli import restore as db_restore
from service.cli_lazy import LazyGroup
from service.config import Settings, get_settings
from service.db import Database, normalise_url
from service.errors import DatabaseUnavailable, ForesightError
from service.names import shown

app = typer.Typer(help="Foresight: predictive resource manager.", no_args_is_help=True, cls=LazyGroup)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
db_app.command("backup")(db_backup)
db_app.command("restore")(db_restore)
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)


def _database() -> Database:
    return Database(get_settings())


def _fail(error: ForesightError) -> None:
    console.print(f"[red]error:[/red] {error.message}")
    raise typer.Exit(2)


def unreachable_message(url: str, error: BaseException) -> str:
    """One line saying why the database cannot be used, and what to do when it simply does not exist."""
    from sqlalchemy.engine import make_url

    target = make_url(normalise_url(url))
    where = f"{target.get_backend_name()} database {target.database!r}"
    if target.host:
        where += f" at {target.host}:{target.port or 5432}"
    cause = str(getattr(error, "orig", None) or error).strip().splitlines()[0] if str(error).strip() else ""
    if "does not exist" in cause and target.get_backend_name() == "postgresql":
        user = f" -U {target.username}" if target.username else ""
        create = f"createdb -h {target.host or 'localhost'} -p {target.port or 5432}{user} {target.database}"
        return f"{where} does not exist; create it with `{create}`, then run `foresight db upgrade`"
    return f"cannot use the {where}: {cause or type(error).__name__}"


F = TypeVar("F", bound=Callable[..., Any])


def database_command(command: F) -> F:
    """A command that talks to the database: a database it cannot reach is one clear line (exit 2),
    not a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy import exc

        try:
            return command(*args, **kwargs)
        except (exc.OperationalError, exc.InterfaceError, DatabaseUnavailable) as error:
            cause = error.__cause__ if isinstance(error, DatabaseUnavailable) and error.__cause__ else error
            line = unreachable_message(get_settings().database_url, cause)
            console.print(f"[red]error:[/red] {line}", soft_wrap=True, highlight=False)
            raise typer.Exit(2) from None

    return cast(F, run)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default FORESIGHT_HOST, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default FORESIGHT_PORT, 8000)")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Run the API (and, on the embedded default, migrate, set up the live demo, print a first key)."""
    import os
    import tempfile

    import uvicorn

    from service.startup import prepare_database

    settings = get_settings()
    database = Database(settings)  # migrate / load the sample / bootstrap once, before any worker starts
    prepare_database(database, settings)
    database.dispose()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # every worker writes its metrics here, /metrics sums them (set before the workers import them)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="foresight-metrics-")
    uvicorn.run(
        "service.asgi:app", host=host or settings.host, port=port or settings.port, workers=workers,
        log_level=settings.log_level.lower(), access_log=False,
        # a worker imports numpy, pandas, LightGBM and torch before it answers its first health check:
        # on a busy machine that takes far longer than uvicorn's 5 s default, which would kill it in a loop
        timeout_worker_healthcheck=120,
    )  # fmt: skip


@db_app.command("upgrade")
@database_command
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply pending migrations (needed for Postgres; SQLite is migrated at start)."""
    database = _database()
    migrate.upgrade(database.engine, revision)
    console.print(f"database at revision {migrate.current_revision(database.engine)}")


@db_app.command("current")
@database_command
def db_current() -> None:
    """Print the database's revision and the code's head revision."""
    database = _database()
    typer.echo(
        json.dumps({"current": migrate.current_revision(database.engine), "head": migrate.head_revision()})
    )


@app.command()
@database_command
def ingest(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Long CSV: series,timestamp,value")
    ],
    kind: Annotated[str, typer.Option(help="Entity kind of the series")] = "node",
    cluster: Annotated[str, typer.Option(help="Cluster of the entities")] = "default",
    metric: Annotated[str | None, typer.Option(help="Metric name when the file has no metric column")] = None,
    unit: Annotated[str | None, typer.Option(help="Unit when the file has no unit column")] = None,
    series: Annotated[
        str | None, typer.Option(help="Entity id for a two-column timestamp,value file")
    ] = None,
) -> None:
    """Import a CSV file in one transaction (all or nothing; re-importing stores nothing twice)."""
    from service.telemetry import service as telemetry
    from service.telemetry.csv_import import CsvMapping, batches, read_long_csv

    mapping = CsvMapping(kind=kind, cluster=cluster, metric=metric, unit=unit, series=series)
    database = _database()
    settings: Settings = database.settings
    try:
        frame = read_long_csv(file, mapping)
        totals = {"accepted": 0, "duplicates": 0, "series_created": 0}
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress, database.session() as session:
            task = progress.add_task(f"ingesting {file.name}", total=len(frame))
            for batch in batches(frame, mapping):
                result = telemetry.ingest_document(session, batch, settings)
                for name in totals:
                    totals[name] += getattr(result, name)
                progress.advance(task, result.samples)
    except ForesightError as error:
        _fail(error)
    typer.echo(json.dumps({"file": str(file), "samples": len(frame), **totals}))


@keys_app.command("create")
@database_command
def keys_create(
    scope: Annotated[list[str], typer.Option(help=f"Scope, repeatable: {', '.join(SCOPES)}")],
    name: Annotated[str, typer.Option(help="What the key is for")] = "cli",
) -> None:
    """Create a key; the secret is printed once, alone on the last line."""
    try:
        with _database().session() as session:
            created = auth_service.create_key(session, name, scope)
    except ForesightError as error:
        _fail(error)
    console.print(f"key {created.id} ({created.name}) with scopes {created.scopes}; store it now:")
    typer.echo(created.key)


@keys_app.command("list")
@database_command
def keys_list() -> None:
    """List keys (never their secrets)."""
    with _database().session() as session:
        rows = auth_service.list_keys(session)
    table = Table("id", "name", "prefix", "scopes", "created", "last used", "revoked")
    for row in rows:
        table.add_row(
            str(row.id), Text(shown(row.name)), row.prefix, ",".join(row.scopes),
            row.created_at.isoformat(timespec="seconds"),
            row.last_used_at.isoformat(timespec="seconds") if row.last_used_at else "-",
            row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "-",
        )  # fmt: skip
    Console().print(table)


@keys_app.command("revoke")
@database_command
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Key id (see `keys list`)")]) -> None:
    """Revoke a key; it stops working at once."""
    try:
        with _database().session() as session:
            revoked = auth_service.revoke_key(session, key_id)
    except ForesightError as error:
        _fail(error)
    console.print(f"key {revoked.id} ({revoked.name}) revoked")


if __name__ == "__main__":
    app()
