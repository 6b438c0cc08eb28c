"""`foresight mitigation train | rule show | rule set FILE | rule clear`: fit the node-mitigation model on
stored events into the registry, and see or declare its fallback rule and hard-fault overrides."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from service.config import get_settings
from service.db import Database
from service.errors import ForesightError
from service.nodes import service
from service.nodes.schemas import MitigationRuleIn, MitigationTrainRequest

console = Console(stderr=True)
mitigation_app = typer.Typer(help="Causal node mitigation.", no_args_is_help=True)
rule_app = typer.Typer(help="The fallback: a declared rule (or learned practice) and overrides.")
mitigation_app.add_typer(rule_app, name="rule", no_args_is_help=True)


@mitigation_app.command("train")
def train(
    n_estimators: Annotated[int, typer.Option(min=4, help="Causal-forest trees (a multiple of 4)")] = 48,
    min_events: Annotated[int, typer.Option(min=20, help="Refuse to fit on fewer usable events")] = 200,
    min_per_action: Annotated[int, typer.Option(min=5, help="Refuse when an action has fewer events")] = 20,
    seed: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Fit on every node event with a known action and downtime; prints the registered model as JSON."""
    try:
        request = MitigationTrainRequest(
            n_estimators=n_estimators, min_events=min_events, min_per_action=min_per_action, seed=seed
        )
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    database = Database(get_settings())
    try:
        with console.status("fitting the causal mitigation model"), database.session() as session:
            model = service.train(session, request)
    except ForesightError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(2) from error
    finally:
        database.dispose()
    console.print(f"trained {model.name} v{model.version} on {model.metrics.get('n_events')} events")
    typer.echo(model.model_dump_json())


def _run(action: Callable[[Any], Any]) -> None:
    database = Database(get_settings())
    try:
        with database.session() as session:
            out = action(session)
    except ForesightError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(2) from error
    finally:
        database.dispose()
    for warning in getattr(out, "warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}")
    typer.echo(out.model_dump_json())


@rule_app.command("show")
def rule_show() -> None:
    """Print the current fallback setting as JSON."""
    _run(service.get_rule)


@rule_app.command("set")
def rule_set(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSON: clauses, default, overrides")
    ],
) -> None:
    """Declare the fallback rule and/or overrides from a JSON file (body of PUT .../mitigation/rule)."""
    try:
        body = MitigationRuleIn.model_validate(json.loads(path.read_text()))
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    _run(lambda session: service.set_rule(session, body))


@rule_app.command("clear")
def rule_clear() -> None:
    """Back to the learned practice and the built-in overrides."""
    _run(lambda session: service.set_rule(session, None))
