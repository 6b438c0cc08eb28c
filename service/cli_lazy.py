"""Sub-commands that load on first use: `foresight keys list` must not pay for the model libraries
(LightGBM, econml, Ray, …) that `forecast`, `mitigation`, `loop` or `replay` import. The top-level
help lists them from this table without importing them; `tests/test_cli.py` checks the import graph."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


def _forecast() -> typer.Typer:
    forecast_app: typer.Typer = importlib.import_module("service.forecasts.cli").forecast_app
    if not any(c.name == "train" for c in forecast_app.registered_commands):
        forecast_app.command("train")(importlib.import_module("service.forecasts.train_cli").train)
    return forecast_app


def _attr(module: str, name: str) -> Callable[[], Any]:
    return lambda: getattr(importlib.import_module(module), name)


def _command(module: str, name: str) -> Callable[[], typer.Typer]:
    def load() -> typer.Typer:
        single = typer.Typer()
        single.command(name)(getattr(importlib.import_module(module), name))
        return single

    return load


LAZY: dict[str, tuple[Callable[[], typer.Typer], str]] = {
    "forecast": (_forecast, "Forecasters: list, backtest, fit files, train into the registry."),
    "mitigation": (_attr("service.nodes.cli", "mitigation_app"), "Causal node-mitigation model."),
    "loop": (_attr("service.loop.cli", "loop_app"), "The control loop: status, targets, freeze, run once."),
    "sources": (_attr("service.integrations.cli", "sources_app"), "Prometheus sources for backfill."),
    "replay": (_attr("service.replays.cli", "replay_app"), "Replay traces through scaling policies."),
    "backfill": (
        _command("service.integrations.cli", "backfill"),
        "Pull history through the Prometheus API.",
    ),
}


class LazyGroup(TyperGroup):
    """A typer group whose `LAZY` sub-commands are imported only when invoked."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(name for name in LAZY if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in LAZY:
            return super().get_command(ctx, cmd_name)
        load, summary = LAZY[cmd_name]
        if self._listing:  # the help page only needs the name and a line
            return TyperCommand(cmd_name, help=summary, short_help=summary)
        command = typer.main.get_command(load())
        command.name = cmd_name
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
