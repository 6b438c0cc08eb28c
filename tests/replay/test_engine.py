"""The closed loop: no look-ahead, the profile's latency at fixed load, the outputs users rely on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from policies.power_profiles import SPLITWISE_FILE
from replay.engine import run_replay, simulate
from replay.summary import SUMMARY_METRICS
from replay.traces import ReplayError, load_trace
from tests.replay.conftest import QUIET

REQUIRED = {
    "policy", "trace", "simulated_seconds", "replica_hours", "requests_total", "sla_violation_rate",
    "p99_latency_s", "energy_kwh", "power_budget_breach_minutes", "capped_server_minutes",
    "scaling_actions", "node_downtime_minutes",
}  # fmt: skip


@pytest.mark.parametrize("policy", ["bayesian", "hpa", "fft-period"])
def test_no_look_ahead(long_csv: Path, policy: str) -> None:
    """Changing the trace after step T changes nothing a policy did before T."""
    config = {  # capacity, cluster size, start given: "auto" and the static plan read the whole trace
        **QUIET,
        "initial_replicas": 6,
        "cluster": {**QUIET["cluster"], "nodes": 40},
        "serving": {"replica_capacity": 10},
        "scaling": {"min_observations": 10},
    }
    trace = load_trace(long_csv, "long", 10.0)
    cut = trace.steps // 2
    changed = load_trace(long_csv, "long", 10.0)
    changed.load[cut:] *= 5.0
    rec_a, _ = simulate(trace, policy, config, seed=0)
    rec_b, _ = simulate(changed, policy, config, seed=0)
    before = rec_a.arrays["replicas"][:cut]
    assert np.array_equal(before, rec_b.arrays["replicas"][:cut])
    assert not np.array_equal(rec_a.arrays["replicas"][cut:], rec_b.arrays["replicas"][cut:])


def test_the_oracle_does_look_ahead(long_csv: Path) -> None:
    """The same check catches a policy that reads the future (the oracle, by design)."""
    trace = load_trace(long_csv, "long", 10.0)
    cut = trace.steps // 2
    changed = load_trace(long_csv, "long", 10.0)
    changed.load[cut:] *= 5.0
    config = {**QUIET, "cluster": {**QUIET["cluster"], "nodes": 40}, "serving": {"replica_capacity": 10}}
    rec_a, _ = simulate(trace, "oracle", config, seed=0)
    rec_b, _ = simulate(changed, "oracle", config, seed=0)
    assert not np.array_equal(rec_a.arrays["replicas"][:cut], rec_b.arrays["replicas"][:cut])


def test_single_replica_reproduces_profile_latency(tmp_path: Path) -> None:
    """One replica, a fixed 512-token prompt / 128-token answer every 30 s: latency = the profile's e2e."""
    n = 60
    ts = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) * 30.0, unit="s")
    trace = tmp_path / "fixed.csv"
    pd.DataFrame(
        {"TIMESTAMP": ts.strftime("%Y-%m-%d %H:%M:%S.%f"), "ContextTokens": 512, "GeneratedTokens": 128}
    ).to_csv(trace, index=False)
    config = {
        **QUIET,
        "serving": {
            "model": "llama2-70b",
            "hardware": "a100-80gb",
            "tensor_parallel": 4,
            "slo_metric": "latency",
            "slo_seconds": 60,
        },
        "scaling": {"min_replicas": 1, "max_replicas": 1},
    }
    summary = run_replay(trace, "azure-llm", "static-peak", config, 0, None)
    assert summary["mean_replicas"] == 1.0
    prof = pd.read_csv(SPLITWISE_FILE)
    rows = prof[
        (prof["model"] == "llama2-70b")
        & (prof["hardware"] == "a100-80gb")
        & (prof["tensor_parallel"] == 4)
        & (prof["batch_size"] == 1)
        & (prof["prompt_size"] == 512)
        & (prof["token_size"] == 128)
    ]
    expected_s = float(rows["e2e_time"].mean()) / 1000.0
    assert summary["p99_latency_s"] == pytest.approx(expected_s, rel=0.02)
    assert summary["sla_violation_rate"] == 0.0


def test_outputs_and_required_summary_keys(llm_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = run_replay(llm_csv, "azure-llm", "hpa", {"scaling": {"min_observations": 5}}, 3, out)
    on_disk = json.loads((out / "summary.json").read_text())
    assert set(on_disk) >= REQUIRED and on_disk == json.loads(json.dumps(summary))
    assert set(SUMMARY_METRICS) <= set(on_disk)
    assert on_disk["requests_total"] == 1200
    timeline = pd.read_csv(out / "timeline.csv")
    for column in ("load", "replicas", "capacity", "latency_p99_s", "power_w", "capped_servers"):
        assert column in timeline.columns
    page = (out / "report.html").read_text()
    assert '<script src="http' not in page and "<script src='http" not in page  # nothing fetched
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js inlined
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.")]  # temp dir renamed away


def test_same_seed_same_result(llm_csv: Path) -> None:
    a = run_replay(llm_csv, "azure-llm", "bayesian", {"scaling": {"min_observations": 5}}, 7, None)
    b = run_replay(llm_csv, "azure-llm", "bayesian", {"scaling": {"min_observations": 5}}, 7, None)
    assert a == b


def test_power_caps_and_failures_are_simulated(long_csv: Path) -> None:
    config = {
        "tile": 2,
        "cluster": {"failures_per_node_day": 20.0, "nodes": 4, "interference": True},
        "power": {"budget_fraction": 0.3, "nodes_per_domain": 2},
        "serving": {"replica_capacity": 10},
    }
    summary = run_replay(long_csv, "long", "hpa", config, 0, None)
    assert summary["node_failures"] > 0 and summary["node_downtime_minutes"] > 0
    assert summary["capped_server_minutes"] > 0
    assert summary["energy_kwh"] > 0


@pytest.mark.parametrize(
    ("fmt", "config", "policy", "message"),
    [
        ("long", {}, "nope", "unknown policy"),
        ("long", {"bogus": 1}, "hpa", "unknown config keys"),
        ("azure-llm", {}, "hpa", "needs columns"),
        ("csv", {}, "hpa", "unknown trace format"),
        ("long", {"speed": 0}, "hpa", "speed must be a positive"),
    ],
)
def test_bad_input_says_why(long_csv: Path, fmt: str, config: dict, policy: str, message: str) -> None:
    with pytest.raises(ReplayError, match=message):
        run_replay(long_csv, fmt, policy, config, 0, None)


def test_missing_trace_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="does not exist"):
        run_replay(tmp_path / "none.csv", "long", "hpa", {}, 0, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_policy_parameter_it_does_not_take_is_a_clear_replay_error(llm_csv: Path) -> None:
    config = {"scaling": {"min_observations": 5, "bayesian": {"seed": 1}}}
    with pytest.raises(ReplayError, match=r"bayesian.*seed"):
        run_replay(llm_csv, "azure-llm", "bayesian", config, 0, None)
