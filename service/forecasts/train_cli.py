"""`foresight forecast train`: fit a forecaster on stored series into the model registry."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

import forecasting
from service.config import get_settings
from service.db import Database
from service.errors import ForesightError
from service.forecasts import frames
from service.forecasts import service as forecasts

console = Console(stderr=True)


def train(
    model: Annotated[str, typer.Option(help="Registered forecaster (see `foresight forecast models`)")] = (
        forecasting.DEFAULT_MODEL
    ),
    series_id: Annotated[list[int] | None, typer.Option(help="Series id, repeatable")] = None,
    cluster: Annotated[str | None, typer.Option(help="All series of this cluster")] = None,
    entity_kind: Annotated[str | None, typer.Option(help="node, workload, power_domain, cluster")] = None,
    entity_id: Annotated[str | None, typer.Option(help="One entity's series")] = None,
    metric: Annotated[str | None, typer.Option(help="Only this metric")] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Steps ahead the backtest scores")] = 12,
    window_days: Annotated[float, typer.Option(min=0.01, help="Days of history to train on")] = 14.0,
    config: Annotated[str, typer.Option(help='Model settings as JSON, e.g. {"max_horizon": 24}')] = "{}",
    backtest: Annotated[bool, typer.Option(help="Score a rolling-origin backtest into the registry")] = True,
    per_cluster: Annotated[
        bool, typer.Option(help="One model per cluster, fitted in parallel on Ray")
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster for --per-cluster (default local)")
    ] = None,
) -> None:
    """Train on the selected series (all of them by default) and add a registry version."""
    try:
        settings = json.loads(config)
    except json.JSONDecodeError as error:
        console.print(f"[red]error:[/red] --config is not JSON: {error}")
        raise typer.Exit(2) from error
    request = forecasts.TrainRequest(
        selection=frames.Selection(tuple(series_id or ()), cluster, entity_kind, entity_id, metric),
        model=model, config=settings, horizon=horizon, window_seconds=window_days * 86400,
        run_backtest=backtest,
    )  # fmt: skip
    database = Database(get_settings())
    try:
        with console.status(f"training {model}"), database.session() as session:
            if per_cluster:
                models = forecasts.train_per_cluster(session, request, ray_address)
            else:
                models = [forecasts.train(session, request)]
    except ForesightError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(2) from error
    finally:
        database.dispose()
    for trained in models:
        console.print(f"trained {trained.name} v{trained.version} on {len(trained.params['series'])} series")
        typer.echo(trained.model_dump_json())
