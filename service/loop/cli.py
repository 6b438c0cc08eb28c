"""`foresight loop status | targets | freeze | unfreeze | run-once`: the control loop from the command
line (the same use cases as `/v1/loop`; the actor recorded for a freeze is `cli:<user>`)."""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from service.config import get_settings
from service.db import Database
from service.loop import service
from service.loop.jobs import run_once

console = Console()
loop_app = typer.Typer(help="The control loop: status, targets, kill switch.", no_args_is_help=True)


def _database() -> Database:
    return Database(get_settings())


@loop_app.command("status")
def status() -> None:
    """Whether the loop runs and acts, and how its targets fare (JSON)."""
    database = _database()
    with database.session() as session:
        typer.echo(service.status(session, database.settings).model_dump_json(indent=2))


@loop_app.command("targets")
def targets(limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100) -> None:
    """Every target with its cadence, actuator, freeze and last pass."""
    database = _database()
    with database.session() as session:
        rows = service.list_targets(session, database.settings, limit, 0)
    table = Table("kind", "target", "cluster", "cadence s", "actuator", "frozen", "last pass", "status")
    for row in rows:
        frozen = f"yes ({row.frozen_reason})" if row.frozen else ""
        last = f"{row.last_run_at:%Y-%m-%d %H:%M:%S}" if row.last_run_at else "never"
        table.add_row(
            row.kind,
            row.name,
            row.cluster or "",
            f"{row.cadence_seconds:g}",
            row.actuator,
            frozen,
            last,
            row.last_status or "new",
        )
    console.print(table)


@loop_app.command("freeze")
def freeze(reason: Annotated[str, typer.Option(help="Why (kept with the freeze)")] = "") -> None:
    """Kill switch: stop all actuation now (decisions are still made and recorded)."""
    database = _database()
    with database.session() as session:
        answer = service.set_fleet_freeze(
            session, database.settings, True, reason or None, f"cli:{getpass.getuser()}"
        )
    typer.echo(f"actuation {answer.actuation}")


@loop_app.command("unfreeze")
def unfreeze() -> None:
    """Lift the fleet-wide kill switch."""
    database = _database()
    with database.session() as session:
        answer = service.set_fleet_freeze(session, database.settings, False, None, f"cli:{getpass.getuser()}")
    typer.echo(f"actuation {answer.actuation}")


@loop_app.command("run-once")
def run_once_command() -> None:
    """One pass over the targets that are due, now; prints its summary as JSON."""
    typer.echo(json.dumps(run_once(_database())))
