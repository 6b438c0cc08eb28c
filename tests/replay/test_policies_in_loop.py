"""Policies behave in the loop as they do in the service: scale-down windows read recommendations, and
the oracle is a real bound (it meets the SLO through interference and failures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from replay.engine import run_replay, simulate
from replay.summary import request_latencies
from replay.traces import load_trace
from tests.replay.conftest import QUIET, long_trace


def spike_trace(path: Path) -> Path:
    """20 units for an hour, 100 for ten minutes, 20 again for two hours (60 s samples)."""
    values = np.r_[np.full(60, 20.0), np.full(10, 100.0), np.full(120, 20.0)]
    ts = pd.date_range("2024-01-01", periods=len(values), freq="60s", tz="UTC")
    pd.DataFrame({"series": "s0", "timestamp": ts, "value": values}).to_csv(path, index=False)
    return path


def spike_config(nodes: int) -> dict[str, Any]:
    """No interference or failures, 10 per replica, a fast-decaying histogram forecast (sees the spike)."""
    return {
        **QUIET,
        "cluster": {**QUIET["cluster"], "nodes": nodes},
        "serving": {"replica_capacity": 10},
        "scaling": {"min_observations": 10, "forecaster": "vpa_histogram",
                    "forecaster_params": {"half_life": "5min"}},
    }  # fmt: skip


@pytest.mark.parametrize("policy", ["hpa", "bayesian"])
def test_replicas_come_back_down_after_a_spike(tmp_path: Path, policy: str) -> None:
    """Stabilization holds the highest *recommendation* of the window; if the loop recorded the clamped
    answer instead, a single spike would keep the replicas up for the rest of the run. ε is stated (the
    expert override): the spike's late requests would otherwise, rightly, make the violation budget hold
    more headroom afterwards, which is not stabilization (tests/replay/test_slo_budget.py covers that)."""
    config = spike_config(nodes=10)
    config["scaling"] = {**config["scaling"], "epsilon": 0.05}
    trace = load_trace(spike_trace(tmp_path / "spike.csv"), "long", 10.0)
    rec, _ = simulate(trace, policy, config, seed=0)
    replicas = rec.arrays["replicas"][:, 0]
    start, spike, end = replicas[300], replicas[360:420].max(), replicas[-30:].max()
    assert spike >= 10 > start
    assert end <= start + 1


def test_oracle_meets_the_slo_through_interference_and_failures(tmp_path: Path) -> None:
    """Told the window's interference and the failure schedule, and sized at the utilisation where the
    latency model still meets the SLO, the oracle has (almost) no violations while HPA does."""
    trace = long_trace(tmp_path / "load.csv", hours=6.0, series=1)
    config = {
        "cluster": {"interference": True, "interference_scale": 3.0, "failures_per_node_day": 6.0},
        "power": {"policy": "none"},
        "serving": {"replica_capacity": 5},
    }
    oracle = run_replay(trace, "long", "oracle", config, 0, None)
    hpa = run_replay(trace, "long", "hpa", config, 0, None)
    assert oracle["node_failures"] > 0
    assert oracle["sla_violation_rate"] <= 0.01 < hpa["sla_violation_rate"]
    static = run_replay(trace, "long", "static-peak", config, 0, None)
    assert oracle["replica_hours"] < static["replica_hours"]


def test_bayesian_reads_the_queue_and_drains_a_burst_sooner(tmp_path: Path) -> None:
    """After a burst the arrivals are back to normal but the queue is not: HPA-style policies (load
    only) leave it to drain on the spare capacity; reading the queue depth scales out to clear it."""
    config = spike_config(nodes=20)
    path = spike_trace(tmp_path / "spike.csv")
    blind_cfg = {**config, "scaling": {**config["scaling"], "see_backlog": False}}
    blind = run_replay(path, "long", "bayesian", blind_cfg, 0, None)
    seeing = run_replay(path, "long", "bayesian", config, 0, None)
    assert seeing["sla_violation_rate"] < blind["sla_violation_rate"]
    trace = load_trace(path, "long", 10.0)
    cleared = []
    for cfg in (config, blind_cfg):  # first 10 s step after the burst (steps 360-419) with no queue
        wait = simulate(trace, "bayesian", cfg, seed=0)[0].arrays["wait"][:, 0]
        cleared.append(420 + int(np.argmax(wait[420:] == 0.0)))
    assert cleared[0] < cleared[1]


def test_bayesian_given_the_observed_slowdown_buys_the_capacity_it_takes(tmp_path: Path) -> None:
    """With heavy interference (capacity x (1 - d)), the policy told the recent slowdown sizes for it;
    without it, it sizes for nominal capacity and misses the SLO more often."""
    trace = long_trace(tmp_path / "load.csv", hours=6.0, series=1)
    config: dict[str, Any] = {
        "cluster": {"interference": True, "interference_scale": 20.0, "failures_per_node_day": 0.0},
        "power": {"policy": "none"},
        "serving": {"replica_capacity": 5},
        "scaling": {"min_observations": 10, "target_utilisation": 0.85},
    }
    told = run_replay(trace, "long", "bayesian", config, 0, None)
    blind_cfg = {**config, "scaling": {**config["scaling"], "see_interference": False}}
    blind = run_replay(trace, "long", "bayesian", blind_cfg, 0, None)
    assert told["sla_violation_rate"] < blind["sla_violation_rate"]
    assert told["replica_hours"] > blind["replica_hours"]


def test_violation_windows_count_the_queue_a_burst_leaves_behind(tmp_path: Path) -> None:
    """The adaptive ε learns from windows that missed the SLO, as an operator reports outcomes: the count
    the engine feeds back agrees with the request latencies the summary scores, and includes windows
    whose own load was under capacity but whose requests waited behind a burst's queue."""
    config = spike_config(nodes=20)
    config["scaling"] = {**config["scaling"], "target_utilisation": 0.9}
    config["decision_interval_seconds"] = 60.0
    trace = load_trace(spike_trace(tmp_path / "spike.csv"), "long", 10.0)
    rec, facts = simulate(trace, "hpa", config, seed=0)
    serving, k = facts["serving"], facts["decision_steps"]
    steps, lat, weight = request_latencies(rec, serving)
    windows = steps // k
    finished = int(facts["slo_windows"][0, 0])
    requests = np.bincount(windows, weights=weight, minlength=finished + 1)[:finished]
    over = np.bincount(windows, weights=weight * (lat > serving.slo_s), minlength=finished + 1)[:finished]
    missed = (requests > 0) & (over > 0.01 * requests)
    assert int(facts["slo_windows"][0, 1]) == int(missed.sum()) > 0
    capacity = rec.arrays["capacity"][: finished * k, 0].reshape(finished, k).min(axis=1)
    load = rec.arrays["load"][: finished * k, 0].reshape(finished, k).mean(axis=1)
    spill = missed & (load <= capacity * 0.9)  # under capacity, yet over the SLO: the queue's doing
    assert spill.any()
