"""What the demo streams: every bundled series as a cyclic sequence of values on a regular step, and the
inventory it belongs to. Values are the traces' own; only their time axis is moved (see `clock.py`).

* NAB CloudWatch (MIT, `sample_data/nab/`): ELB request counts and EC2 network-in feed two workloads,
  three CPU-utilisation series stay node metrics — 5-minute steps, 14 days, cyclic.
* Azure LLM inference, code (CC BY 4.0, `sample_data/azure_llm_inference_2023/`): requests per second
  in 10 s bins, one hour, cyclic — the third workload.
* A GPU power domain of four A100 servers: the semi-synthetic power of `forecasting/power_data.py` (the
  same Azure trace through the bundled Splitwise profile), per server and as the domain total, 10 s bins.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
PROFILE = Path(__file__).resolve().parents[2] / "policies" / "profiles" / "splitwise_llm_perf_profile"
CLUSTER = "demo"
AZURE_TRACE = SAMPLE_DATA / "azure_llm_inference_2023" / "AzureLLMInferenceTrace_code.csv.gz"
LLM_BIN_SECONDS = 10.0
POWER_DOMAIN = "gpu-rack-1"
GPU_SERVERS = 4
GPUS_PER_SERVER = 8
HOST_WATTS = 700.0  # the generator's assumed host draw (forecasting/power_data.py)


@dataclass(frozen=True)
class DemoSeries:
    """One stored series of the demo: where it lives, its values (cyclic) and its step in trace time."""

    kind: str
    entity: str
    metric: str
    unit: str
    values: np.ndarray
    step_seconds: float
    source: str

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.entity}/{self.metric}"


@dataclass(frozen=True)
class DemoWorkload:
    """A workload the loop sizes: its load series and how much of that load one replica serves."""

    name: str
    metric: str
    replica_capacity: float
    max_replicas: int


NAB = {
    "elb_request_count_8c0756.csv": ("workload", "web", "request_count", "req"),
    "ec2_network_in_257a54.csv": ("workload", "ingest", "network_in_bytes", "B"),
    "ec2_cpu_utilization_24ae8d.csv": ("node", "ec2-24ae8d", "cpu_utilization", "%"),
    "ec2_cpu_utilization_5f5533.csv": ("node", "ec2-5f5533", "cpu_utilization", "%"),
    "rds_cpu_utilization_cc0c53.csv": ("node", "rds-cc0c53", "cpu_utilization", "%"),
}
PEAK_REPLICAS = 8
"""A demo workload is sized so that its trace's 99th-percentile load needs this many replicas at full
utilisation: a scale, not a tuned constant (every workload gets the same rule on its own data)."""


def _nab(name: str) -> DemoSeries:
    kind, entity, metric, unit = NAB[name]
    frame = pd.read_csv(SAMPLE_DATA / "nab" / name)
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    step = float(ts.diff().dt.total_seconds().median())
    return DemoSeries(kind, entity, metric, unit, frame["value"].to_numpy(float), step, f"nab/{name}")


def _llm_rate() -> DemoSeries:
    raw = pd.read_csv(AZURE_TRACE)
    ts = pd.to_datetime(raw["TIMESTAMP"], format="mixed")
    offset = (ts - ts.min()).dt.total_seconds().to_numpy()
    bins = np.bincount((offset // LLM_BIN_SECONDS).astype(int)).astype(float) / LLM_BIN_SECONDS
    return DemoSeries("workload", "llm-code", "requests_per_second", "req/s", bins, LLM_BIN_SECONDS,
                      "azure_llm_inference_2023/AzureLLMInferenceTrace_code.csv.gz")  # fmt: skip


def _power() -> list[DemoSeries]:
    from forecasting.power_data import PowerGenerator, load_profile, load_trace

    generator = PowerGenerator(n_domains=1, servers_per_domain=GPU_SERVERS, repeats=3, bin_s=LLM_BIN_SECONDS,
                               gpus_per_server=GPUS_PER_SERVER, host_w=HOST_WATTS, seed=0)  # fmt: skip
    frame, _ = generator.generate(load_trace(AZURE_TRACE), load_profile(PROFILE / "perf_model.csv"))
    out, total = [], None
    for j, (_, rows) in enumerate(frame.groupby("series_id", sort=True)):
        values = rows.sort_values("ts")["value"].to_numpy(float)
        total = values if total is None else total + values
        out.append(DemoSeries("node", f"gpu-{j}", "node_power_watts", "W", values, LLM_BIN_SECONDS,
                              "semi-synthetic: forecasting/power_data.py"))  # fmt: skip
    assert total is not None
    out.append(DemoSeries("power_domain", POWER_DOMAIN, "power_watts", "W", total, LLM_BIN_SECONDS,
                          "sum of the servers' power"))  # fmt: skip
    return out


@lru_cache(maxsize=1)
def all_series() -> tuple[DemoSeries, ...]:
    return (*(_nab(name) for name in NAB), _llm_rate(), *_power())


def workloads() -> list[DemoWorkload]:
    """The three demo workloads, each sized by the same rule on its own trace (`PEAK_REPLICAS`)."""
    out = []
    for s in all_series():
        if s.kind != "workload":
            continue
        capacity = float(np.quantile(s.values, 0.99)) / PEAK_REPLICAS
        out.append(DemoWorkload(s.entity, s.metric, round(max(capacity, 1e-6), 6), 4 * PEAK_REPLICAS))
    return out


def domain_budget() -> float:
    """The rack's budget: its trace's 95th-percentile total, so the capping policy has work to do."""
    total = next(s for s in all_series() if s.kind == "power_domain")
    return round(float(np.quantile(total.values, 0.95)), 1)
