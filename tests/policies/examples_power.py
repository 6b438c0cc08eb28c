"""Inputs of the power, oversubscription and energy policies for the policy conformance suite.

`example_inputs()` covers normal cases (policy name, input); `fallback_inputs()` forces each policy's
fallback path (no forecast, missing telemetry, stale forecast, infeasible SLO).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm

import policies.energy
import policies.oversubscription
import policies.power  # noqa: F401  (registers the power policies)
from forecasting.types import DEFAULT_QUANTILES
from policies.distribution import QuantileForecast
from policies.energy import EnergyInput
from policies.oversubscription import OversubscriptionInput
from policies.power_model import PowerDomainInput, ServerState

HOST_W = 700.0


def normal_forecast(mean: float, sd: float, steps: int = 6) -> QuantileForecast:
    """A forecast whose quantiles are those of N(mean, sd) at every step."""
    row = mean + sd * norm.ppf(np.array(DEFAULT_QUANTILES))
    return QuantileForecast(DEFAULT_QUANTILES, np.tile(row, (steps, 1)), step_seconds=10.0)


def servers(
    n: int = 12, watts: float = 2400.0, classes: int = 3, limit: float | None = None, profile: str = "a100"
) -> tuple[ServerState, ...]:
    """`n` 8-GPU servers drawing `watts` each, priorities 0..classes-1 round robin, optionally capped."""
    return tuple(
        ServerState(f"s{i:02d}", i % classes, profile, 8, watts, HOST_W, power_limit_watts=limit)
        for i in range(n)
    )


def domain(mean: float, sd: float = 800.0, budget: float = 33_000.0, **kw: Any) -> PowerDomainInput:
    """A 12-server domain whose total forecast is N(mean, sd) and whose telemetry agrees with it."""
    srv = kw.pop("servers", None) or servers(watts=mean / 12)
    return PowerDomainInput(
        "row-a", budget, srv, normal_forecast(mean, sd), epsilon=kw.pop("epsilon", 0.01), **kw
    )


def example_inputs() -> list[tuple[str, Any]]:
    new = ServerState("new", 0, "a100", 8, None, HOST_W)
    rate = normal_forecast(3.0, 0.6)
    return [
        ("power_polca", domain(24_000)),
        ("power_polca", domain(29_500)),
        ("power_polca", domain(34_000)),
        ("power_polca", domain(60_000, servers=servers(watts=5000.0))),
        ("power_polca", domain(20_000, servers=servers(watts=20_000 / 12, limit=200.0), calm_windows=1)),
        (
            "power_polca",
            domain(20_000, servers=servers(n=12, watts=20_000 / 12, profile="v100"), budget=25_000),
        ),
        ("power_reactive", domain(24_000)),
        ("power_reactive", domain(31_000)),
        ("power_reactive", domain(35_000)),
        ("oversubscription", OversubscriptionInput(domain(24_000, sd=2500.0, budget=46_800.0), new)),
        ("oversubscription", OversubscriptionInput(domain(40_000, sd=2500.0, budget=40_000.0), new)),
        ("energy_mode", EnergyInput("llama", rate, 1500, 250, 2000, 100, 64)),
        ("energy_mode", EnergyInput("llama-h100", rate, 1500, 250, 1000, 60, 64, hardware="h100-80gb")),
    ]


def fallback_inputs() -> list[tuple[str, Any]]:
    new = ServerState("new", 0, "a100", 8, None, HOST_W)
    no_forecast = PowerDomainInput("row-a", 33_000.0, servers(), None)
    missing = tuple(
        ServerState(s.name, s.priority, s.profile, s.gpus, None if i == 0 else s.power_watts, s.host_watts)
        for i, s in enumerate(servers())
    )
    stale = PowerDomainInput("row-a", 33_000.0, servers(watts=1200.0), normal_forecast(30_000, 500))
    return [
        ("power_polca", no_forecast),
        ("power_polca", PowerDomainInput("row-a", 33_000.0, missing, normal_forecast(28_000, 800))),
        ("power_polca", stale),
        ("power_reactive", PowerDomainInput("row-a", 33_000.0, missing, None)),
        ("oversubscription", OversubscriptionInput(no_forecast, new)),
        ("energy_mode", EnergyInput("llama", None, 1500, 250, 2000, 100, 64)),
        ("energy_mode", EnergyInput("llama", normal_forecast(3.0, 0.6), 1500, 250, 10, 5, 64)),
    ]
