"""The SLO budget in the loop: the Bayesian policy tunes ε online to spend the objective's violation
budget (a looser budget costs less, a tighter one is still met), and objectives the replay cannot meet
or does not know are refused."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from policies.adaptive import BUDGET_STEP, EPSILON_RANGE
from replay.engine import simulate
from replay.traces import ReplayError, load_trace
from tests.replay.conftest import QUIET, long_trace


def run(path: Path, scaling: dict) -> tuple[float, float]:
    trace = load_trace(path, "long", 10.0)
    config = {
        **QUIET,
        "serving": {"replica_capacity": 5},
        "scaling": {"min_observations": 10, "target_utilisation": 0.95, **scaling},
    }
    rec, facts = simulate(trace, "bayesian", config, seed=0)
    windows, missed = facts["slo_windows"][0]
    return missed / windows, float(rec.arrays["replicas"].sum())


def test_the_risk_level_spends_the_window_budget(tmp_path: Path) -> None:
    path = long_trace(tmp_path / "load.csv", hours=8.0, series=1, seed=3)
    p99 = {"objective": "p99_latency", "max_seconds": 0.5}
    loose_rate, loose_cost = run(path, {**p99, "windows": 0.9})
    tight_rate, tight_cost = run(path, {**p99, "windows": 0.98})
    # ACI's finite-sample bound: |rate - budget| <= budget x (range of log ε) / (step x windows)
    spread = math.log(EPSILON_RANGE[1] / EPSILON_RANGE[0]) + math.log(1000.0)
    slack = 0.02 * spread / (BUDGET_STEP * 480)
    assert tight_rate <= 0.02 + slack
    assert tight_rate < loose_rate <= 0.10  # spent, not hoarded: more misses allowed, more taken
    assert loose_cost < tight_cost  # ... at less cost


@pytest.mark.parametrize(
    ("scaling", "message"),
    [
        ({"objective": "queue_time"}, "unknown metric"),
        ({"objective": "p99_latency", "max_seconds": 0.05}, "cannot be met"),
        ({"objective": "late_fraction", "max": 0.0}, "cannot be met"),
    ],
)
def test_objectives_it_cannot_meet_or_know_are_refused(tmp_path: Path, scaling: dict, message: str) -> None:
    path = long_trace(tmp_path / "load.csv", hours=0.5, series=1)
    with pytest.raises(ReplayError, match=message):
        run(path, scaling)
