"""Nodes of the simulated cluster: replica slots, interference, failures and their mitigation.

* Nodes have `gpus_per_node` GPUs; a replica takes `gpus_per_replica`, so a node holds
  `gpus_per_node // gpus_per_replica` replicas. Replicas are packed fill-first onto the up nodes in
  index order (a bin-packing scheduler), which decides which power domain carries them.
* Interference: each node follows the hourly degradation of one long-lived VM of the Azure VM noise data
  (`1 - value / that VM's median`, clipped to [0, 0.9]), starting at a random hour; replicas slow down by
  the replica-weighted mean degradation of the nodes in use.
* Failures: unhealthy-node events arrive as a Poisson process (`failures_per_node_day`), each an event
  of the semi-synthetic mitigation model (`policies.mitigation_synthetic`); the mitigation policy
  (`mitigation_legacy` by default — the same code as the service) picks the action and the node is out
  of service for the downtime `sample_downtime` draws for that action. Event times, nodes and events
  depend on the seed only, never on the scaling policy, so every policy faces the same failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policies.catalog import load_all
from policies.mitigation_synthetic import generate, sample_downtime
from policies.mitigation_types import MitigationInput, NodeEvent
from policies.types import build_policy
from replay.traces import ReplayError

_REPO = Path(__file__).resolve().parents[1]
NOISE_DIRS = (
    _REPO.parent / "shared" / "data" / "azure_vm_noise_2024",
    _REPO / "tests" / "data" / "azure_vm_noise_2024",
)


def degradation_series(root: Path | None, benchmark: str, max_vms: int = 8) -> tuple[np.ndarray, str]:
    """(vms, hours) degradation of long-lived VMs (NaN-free, gaps forward-filled) and where it came from."""
    candidates = [root] if root is not None else list(NOISE_DIRS)
    for base in candidates:
        files = sorted(base.glob(f"{benchmark}/long_*_D8s_v5.csv*")) if base.exists() else []
        if not files:
            continue
        rows = []
        for path in files:
            raw = pd.read_csv(path, usecols=["value", "starttime", "VM_id"])
            ts = pd.to_datetime(raw["starttime"], format="mixed", utc=True).dt.floor("1h")
            for _, one in raw.assign(ts=ts).groupby("VM_id"):
                hourly = one.groupby("ts")["value"].mean().asfreq("1h").ffill()
                if len(hourly) < 48:
                    continue
                value = hourly.to_numpy(dtype=float)
                deg = 1.0 - value / np.median(value)
                if benchmark.endswith("_latency_ms"):  # lower is better: slowdown is value/median - 1
                    deg = value / np.median(value) - 1.0
                rows.append(np.clip(deg, 0.0, 0.9))
        if rows:
            rows = rows[:max_vms]
            length = min(len(r) for r in rows)
            return np.stack([r[:length] for r in rows]), f"{base.name}/{benchmark} ({len(rows)} VMs)"
    raise ReplayError(
        f"interference data for {benchmark!r} not found under {[str(c) for c in candidates]}; set "
        "cluster.interference_data to the azure_vm_noise_2024 folder or cluster.interference to false"
    )


@dataclass
class Failure:
    """One unhealthy-node event: when, which node, the event, and (once decided) action and downtime."""

    step: int
    node: int
    event: NodeEvent
    action: str = ""
    downtime_min: float = 0.0


@dataclass
class Cluster:
    """Node state over a run: which nodes are up, their degradation now, and the failure schedule."""

    nodes: int
    replicas_per_node: int
    gpus_per_node: int
    step_seconds: float
    degradation: np.ndarray
    """(nodes, hours) hourly degradation per node, or zeros when interference is off."""
    failures: list[Failure] = field(default_factory=list)
    mitigation_policy: Any = None
    max_out_of_service: int = 1
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    down_until: np.ndarray = field(init=False)
    downtime_minutes: float = 0.0
    actions: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.down_until = np.zeros(self.nodes)
        self._next = 0

    @property
    def slots(self) -> int:
        return self.nodes * self.replicas_per_node

    def up(self, now_s: float) -> np.ndarray:
        return self.down_until <= now_s

    def degradation_at(self, now_s: float) -> np.ndarray:
        hour = int(now_s // 3600.0) % self.degradation.shape[1]
        return self.degradation[:, hour]

    def placement(self, replicas: int, now_s: float) -> np.ndarray:
        """Replicas per node, packed fill-first onto up nodes in index order."""
        up = self.up(now_s)
        per = np.where(up, self.replicas_per_node, 0)
        before = np.cumsum(per) - per
        return np.clip(replicas - before, 0, per).astype(int)

    def fail_due(self, step: int, now_s: float) -> list[Failure]:
        """Decide and apply the failures of this step; returns them (the engine removes lost replicas)."""
        due = []
        while self._next < len(self.failures) and self.failures[self._next].step <= step:
            f = self.failures[self._next]
            self._next += 1
            out = int((~self.up(now_s)).sum())
            decision = self.mitigation_policy.decide(
                MitigationInput(f"node-{f.node}", f.event, out, self.max_out_of_service)
            )
            f.action = decision.action
            f.downtime_min = sample_downtime(f.event, f.action, self.rng)
            self.down_until[f.node] = max(self.down_until[f.node], now_s + f.downtime_min * 60.0)
            self.downtime_minutes += f.downtime_min
            self.actions[f.action] = self.actions.get(f.action, 0) + 1
            due.append(f)
        return due


def build_cluster(
    config: dict[str, Any], peak_replicas: int, steps: int, step_s: float, seed: int
) -> Cluster:
    """A cluster from the `cluster` config section; `nodes: auto` fits 1.25x the peak need."""
    gpus = int(config.get("gpus_per_node", 8))
    per_replica = int(config.get("gpus_per_replica", 1))
    rpn = max(gpus // max(per_replica, 1), 1)
    nodes_cfg = config.get("nodes", "auto")
    nodes = int(np.ceil(1.25 * max(peak_replicas, 1) / rpn)) + 1 if nodes_cfg == "auto" else int(nodes_cfg)
    if nodes < 1:
        raise ReplayError(f"cluster.nodes must be >= 1 or 'auto', got {nodes_cfg!r}")
    rng = np.random.default_rng([seed, 17])
    if config.get("interference", True):
        root = config.get("interference_data")
        series, _ = degradation_series(
            Path(root) if root else None,
            str(config.get("interference_benchmark", "mlc_max_bw_all_reads_mib_s")),
        )
        scale = float(config.get("interference_scale", 1.0))
        vm = rng.integers(0, series.shape[0], nodes)
        start = rng.integers(0, series.shape[1], nodes)
        hours = max(int(np.ceil(steps * step_s / 3600.0)), 1)
        idx = (start[:, None] + np.arange(hours)[None, :]) % series.shape[1]
        degradation = np.clip(series[vm[:, None], idx] * scale, 0.0, 0.9)
    else:
        degradation = np.zeros((nodes, 1))
    rate = float(config.get("failures_per_node_day", 0.05))
    expected = rate * nodes * steps * step_s / 86400.0
    count = int(rng.poisson(expected)) if rate > 0 else 0
    failures: list[Failure] = []
    if count:
        events = generate(count, seed=int(rng.integers(0, 2**31))).events
        when = np.sort(rng.integers(0, steps, count))
        where = rng.integers(0, nodes, count)
        failures = [Failure(int(s), int(n), e) for s, n, e in zip(when, where, events, strict=True)]
    load_all()
    try:
        policy = build_policy(str(config.get("mitigation_policy", "mitigation_legacy")))
    except Exception as exc:
        raise ReplayError(f"cluster.mitigation_policy: {exc}") from None
    return Cluster(
        nodes=nodes,
        replicas_per_node=rpn,
        gpus_per_node=gpus,
        step_seconds=step_s,
        degradation=degradation,
        failures=failures,
        mitigation_policy=policy,
        max_out_of_service=int(config.get("max_out_of_service", max(nodes // 20, 1))),
        rng=np.random.default_rng([seed, 23]),
    )
