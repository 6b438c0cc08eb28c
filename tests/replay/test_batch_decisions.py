"""The replay's batched Bayesian decisions give the same run as the per-workload policy calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from replay.engine import simulate
from replay.traces import load_trace
from tests.replay.conftest import long_trace


@pytest.mark.parametrize(
    "extra",
    [
        {},  # interference and failures on (the cluster's defaults), the SLO budget tuning ε
        {"initial_replicas": "cold"},
        {"scaling": {"epsilon": 0.05, "forecast_every": 1}},  # ε stated: the adaptive ε from violations
    ],
)
def test_batched_run_equals_per_workload_run(tmp_path: Path, extra: dict[str, Any]) -> None:
    trace = load_trace(long_trace(tmp_path / "load.csv", hours=3.0, series=4), "long", 10.0)
    scaling = {"min_observations": 20, "history": 120, **extra.get("scaling", {})}
    config = {
        "serving": {"replica_capacity": 10},
        "cluster": {"nodes": 6, "failures_per_node_day": 4.0},
        **{k: v for k, v in extra.items() if k != "scaling"},
        "scaling": scaling,
    }
    batched, _ = simulate(trace, "bayesian", config, seed=1)
    looped, _ = simulate(
        trace, "bayesian", {**config, "scaling": {**scaling, "batch_decisions": False}}, seed=1
    )
    assert np.array_equal(batched.arrays["replicas"], looped.arrays["replicas"])
    assert np.array_equal(batched.arrays["ready"], looped.arrays["ready"])
    assert batched.arrays["replicas"].std() > 0  # the policy did move
