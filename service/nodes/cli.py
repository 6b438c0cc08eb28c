"""`foresight mitigation train`: fit the causal node-mitigation model on stored events into the registry."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from service.config import get_settings
from service.db import Database
from service.errors import ForesightError
from service.nodes import service
from service.nodes.schemas import MitigationTrainRequest

console = Console(stderr=True)
mitigation_app = typer.Typer(help="Causal node mitigation.", no_args_is_help=True)


@mitigation_app.command("train")
def train(
    n_estimators: Annotated[int, typer.Option(min=4, help="Causal-forest trees (a multiple of 4)")] = 200,
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
