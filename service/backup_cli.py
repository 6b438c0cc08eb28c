"""`foresight db backup FILE` and `foresight db restore FILE [--force]`, with a rich progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from service import backup as backups
from service.config import get_settings
from service.db import Database
from service.errors import ForesightError

console = Console(stderr=True)


class BarProgress:
    """One bar per table: rows done of the table's row count."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, table: str, rows: int) -> None:
        self.task = self.progress.add_task(table, total=max(rows, 0))

    def advance(self, rows: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, rows)


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console, transient=False,
    )  # fmt: skip


def _fail(error: ForesightError) -> None:
    console.print(f"[red]error:[/red] {error.message}")
    raise typer.Exit(2)


def backup(file: Annotated[Path, typer.Argument(help="Where to write the backup (gzip JSON lines)")]) -> None:
    """Write every table, in dependency order, with the schema revision, to FILE."""
    database = Database(get_settings())
    partial = file.with_name(file.name + ".partial")
    try:
        with _bar() as bar:
            summary = backups.backup(database, partial, BarProgress(bar))
        partial.replace(file)  # a backup that died half-way never looks complete
    except ForesightError as error:
        partial.unlink(missing_ok=True)
        _fail(error)
    finally:
        database.dispose()
    console.print(
        f"backed up {summary.rows:,} rows of {len(summary.tables)} tables at revision {summary.revision}"
    )


def restore(
    file: Annotated[Path, typer.Argument(help="A backup written by `foresight db backup`", exists=True)],
    force: Annotated[bool, typer.Option("--force", help="Replace the rows of a non-empty database")] = False,
) -> None:
    """Load FILE into an empty database migrated to the backup's revision (all or nothing)."""
    database = Database(get_settings())
    try:
        with _bar() as bar:
            summary = backups.restore(database, file, force=force, progress=BarProgress(bar))
    except ForesightError as error:
        _fail(error)
    finally:
        database.dispose()
    console.print(
        f"restored {summary.rows:,} rows of {len(summary.tables)} tables at revision {summary.revision}"
    )
