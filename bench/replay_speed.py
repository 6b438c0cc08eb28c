"""Replay speed: simulated seconds per wall second for 1 day of a 1,000-node, 200-workload cluster.

The 200 workloads are the NAB CloudWatch series of `service/sample_data/nab/` (long format), each
shifted by a random number of hours and scaled by a random factor (seeded), held over 10 s steps. The
serving, queues, interference, failures and power domains run vectorised over workloads and nodes; the
scaling policy is the service's own code called per workload per decision (60 s by default).

    OMP_NUM_THREADS=1 .venv/bin/python bench/replay_speed.py [--policy bayesian] [--workloads 200] \
        [--nodes 1000] [--hours 24]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from replay.engine import simulate
from replay.traces import load_trace

NAB = Path(__file__).resolve().parents[1] / "service" / "sample_data" / "nab"


def cluster_trace(path: Path, workloads: int, seed: int, hours: float = 24.0) -> Path:
    """A long-format trace of `workloads` series (1 day by default) built from the NAB files (shifted,
    scaled)."""
    rng = np.random.default_rng(seed)
    sources = [pd.read_csv(f) for f in sorted(NAB.glob("*.csv"))]
    n = int(hours * 12)
    ts = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")
    rows = []
    for w in range(workloads):
        src = sources[w % len(sources)]["value"].to_numpy(dtype=float)
        start = int(rng.integers(0, len(src) - n))
        values = src[start : start + n] / max(src.max(), 1e-9) * 100.0 * rng.uniform(0.5, 2.0)
        rows.append(pd.DataFrame({"series": f"w{w:03d}", "timestamp": ts, "value": values}))
    pd.concat(rows).to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", default="hpa")
    parser.add_argument("--workloads", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--decision-interval", type=float, default=60.0)
    parser.add_argument("--power-interval", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (a shorter smoke run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = cluster_trace(Path(tmp) / "cluster.csv", args.workloads, args.seed, args.hours)
        trace = load_trace(path, "long", 10.0)
    config = {
        "decision_interval_seconds": args.decision_interval,
        "serving": {"replica_capacity": 25.0},
        "cluster": {"nodes": args.nodes, "gpus_per_node": 8, "gpus_per_replica": 8},
        "power": {"interval_seconds": args.power_interval, "nodes_per_domain": 50},
        "scaling": {"min_observations": 30, "refit_every": 720},
    }
    start, cpu = time.perf_counter(), time.process_time()
    rec, facts = simulate(trace, args.policy, config, seed=args.seed)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    simulated = rec.steps * trace.step_seconds
    replicas = rec.arrays["replicas"].sum(axis=1)
    print(
        f"policy={args.policy} workloads={args.workloads} nodes={facts['cluster'].nodes} "
        f"steps={rec.steps} x {trace.step_seconds:g}s, decisions every {args.decision_interval:g}s, "
        f"power every {args.power_interval:g}s ({facts['power'].domains} domains, "
        f"{facts['power'].asked} domain decisions by {facts['power'].policy_name})"
    )
    print(
        f"mean replicas {replicas.mean():.0f} (peak {replicas.max():.0f}), "
        f"failures {len(facts['cluster'].failures)}"
    )
    print(f"simulated {simulated:,.0f} s in {wall:.1f} s wall: {simulated / wall:,.0f}x real time")
    # on a shared machine the wall clock counts other processes' time too; CPU time is this run's own
    print(f"CPU time {cpu:.1f} s: {simulated / cpu:,.0f}x real time per CPU-second")


if __name__ == "__main__":
    main()
