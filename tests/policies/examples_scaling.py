"""Example inputs of the scaling and right-sizing policies for the conformance suite."""

from __future__ import annotations

from typing import Any

import numpy as np

from policies.adaptive import ViolationHistory
from policies.distribution import QuantileForecast
from policies.rightsizing import ResourceUsage, RightsizingInput
from policies.scaling import ScalingInput

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
SCALING = ("bayesian_scaling", "hpa", "static_peak", "vpa_percentile", "holt_winters_hpa")


def _scaling(**overrides: Any) -> ScalingInput:
    rng = np.random.default_rng(0)
    history = tuple(float(v) for v in 50 + 20 * np.sin(np.arange(180) / 20) + rng.normal(0, 2, 180))
    base: dict[str, Any] = {
        "workload": "web",
        "now_ts": 1_731_780_000.0,
        "current_replicas": 6,
        "replica_capacity": 10.0,
        "load_forecast": QuantileForecast(LEVELS, np.tile([40.0, 48.0, 52.0, 56.0, 64.0], (6, 1))),
        "observed_load": history,
        "max_replicas": 30,
        "violations": ViolationHistory(50, 2),
        "recent_recommendations": ((1_731_779_940.0, 7),),
    }
    base.update(overrides)
    return ScalingInput(**base)


def example_inputs() -> list[tuple[str, Any]]:
    usage = {"cpu": ResourceUsage(observed=(0.5, 0.7, 0.9) * 10, current_request=1.0)}
    return [
        *[(name, _scaling()) for name in SCALING],
        *[(name, _scaling(current_replicas=1, observed_load=(5.0,) * 30)) for name in SCALING],
        ("rightsizing", RightsizingInput("web", usage)),
    ]


def fallback_inputs() -> list[tuple[str, Any]]:
    return [
        ("bayesian_scaling", _scaling(load_forecast=None)),
        ("hpa", _scaling(observed_load=())),
        ("vpa_percentile", _scaling(observed_load=())),
        ("holt_winters_hpa", _scaling(observed_load=(3.0,) * 4)),
        ("rightsizing", RightsizingInput("web", {"cpu": ResourceUsage()})),
    ]
