"""What a run cost: summary.json metrics, the per-step timeline, and the compare aggregation.

Metrics (docs/replay.md defines each): replica-hours count every provisioned replica including those still
starting; the SLA violation rate is the share of requests whose latency (or TTFT) is over the SLO; energy
integrates every up node's power; budget-breach minutes add up, per power domain, the minutes its total
exceeded the budget; capped-server minutes add up the minutes each node ran under a cap or the brake.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from replay.traces import Trace

SUMMARY_METRICS = (
    "simulated_seconds",
    "replica_hours",
    "requests_total",
    "sla_violation_rate",
    "p99_latency_s",
    "energy_kwh",
    "power_budget_breach_minutes",
    "capped_server_minutes",
    "scaling_actions",
    "node_downtime_minutes",
    "mean_replicas",
    "peak_replicas",
)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, level: float) -> float:
    """The `level` quantile of `values` each counted `weights` times (0 when there is no weight)."""
    keep = weights > 0
    if not keep.any():
        return 0.0
    order = np.argsort(values[keep])
    v, w = values[keep][order], weights[keep][order]
    cum = np.cumsum(w)
    return float(v[min(int(np.searchsorted(cum, level * cum[-1])), len(v) - 1)])


def request_latencies(rec: Any, serving: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(step, latency, weight) for every request (LLM) or every (step, workload) cell (rate)."""
    a = rec.arrays
    steps, wl, lat = serving.latencies(a["wait"], a["batch"], a["speed"], a["util"])
    keep = steps < rec.steps
    steps, wl, lat = steps[keep], wl[keep], lat[keep]
    if serving.kind == "llm":
        return steps, lat, np.ones_like(lat)
    weights = serving.requests_per_step()[: rec.steps].ravel()
    return steps, lat, weights


def summarise(
    trace: Trace, policy: str, seed: int, config: dict[str, Any], rec: Any, facts: dict[str, Any]
) -> dict[str, Any]:
    """The summary.json document of one run."""
    a, dt = rec.arrays, trace.step_seconds
    serving, cluster, power = facts["serving"], facts["cluster"], facts["power"]
    steps, lat, weight = request_latencies(rec, serving)
    a["p99"] = step_p99(rec, serving)
    w0 = min(round(float(config.get("warmup_seconds", 0.0)) / dt), rec.steps - 1)
    counted = steps >= w0  # the warm-up is simulated (policies learn) but not scored
    lat, weight = lat[counted], weight[counted]
    total = float(weight.sum())
    over = float(weight[lat > serving.slo_s].sum())
    replicas = a["replicas"][w0:].sum(axis=1)
    return {
        "policy": policy,
        "trace": trace.name,
        "trace_format": trace.format,
        "seed": seed,
        "simulated_seconds": (rec.steps - w0) * dt,
        "warmup_seconds": w0 * dt,
        "replica_hours": float(replicas.sum() * dt / 3600.0),
        "requests_total": round(total, 3),
        "sla_violation_rate": over / total if total else 0.0,
        "p99_latency_s": weighted_quantile(lat, weight, 0.99),
        "energy_kwh": float(a["power"][w0:].sum() * dt / 3.6e6),
        "power_budget_breach_minutes": float(a["breach_domains"][w0:].sum() * dt / 60.0),
        "capped_server_minutes": float(a["capped"][w0:].sum() * dt / 60.0),
        "scaling_actions": int(facts["scaling_actions"]),
        "initial_replicas": [int(n) for n in facts.get("initial_replicas", [])],
        "node_downtime_minutes": float(cluster.downtime_minutes),
        "mean_replicas": float(replicas.mean()),
        "peak_replicas": int(replicas.max()),
        "slo": serving.describe()["slo"],
        "slo_seconds": float(serving.slo_s),
        "power_budget_kw": float(power.budget.sum() / 1000.0),
        "workloads": len(trace.workloads),
        "nodes": cluster.nodes,
        "power_domains": power.domains,
        "power_policy": power.policy_name,
        "node_failures": len([f for f in cluster.failures if f.action]),
        "mitigation_actions": dict(cluster.actions),
        "serving": serving.describe(),
        "config": config,
        "forecaster_error": facts.get("forecaster_error"),
    }


def timeline_frame(rec: Any, step_seconds: float) -> pd.DataFrame:
    """timeline.csv: one row per step, load / replicas / capacity summed over workloads, the step's p99
    latency (per request for LLM traces, the worst workload for rate traces), power and caps."""
    a = rec.arrays
    return pd.DataFrame(
        {
            "t_seconds": np.arange(rec.steps) * step_seconds,
            "load": a["load"].sum(axis=1),
            "replicas": a["replicas"].sum(axis=1),
            "ready_replicas": a["ready"].sum(axis=1),
            "capacity": a["capacity"].sum(axis=1),
            "latency_p99_s": a.get("p99", np.zeros(rec.steps)),
            "queue_wait_s": a["wait"].max(axis=1),
            "speed": a["speed"].mean(axis=1),
            "power_w": a["power"],
            "capped_servers": a["capped"],
            "domains_over_budget": a["breach_domains"],
            "nodes_up": a["nodes_up"],
            "forecast_q05": a["band_lo"],
            "forecast_q50": a["band_mid"],
            "forecast_q95": a["band_hi"],
        }
    )


def step_p99(rec: Any, serving: Any) -> np.ndarray:
    """Per-step p99 latency over the requests of that step (0 where a step has none)."""
    steps, lat, weight = request_latencies(rec, serving)
    out = np.zeros(rec.steps)
    frame = pd.DataFrame({"s": steps, "lat": lat, "w": weight})
    frame = frame[frame["w"] > 0]
    q = frame.groupby("s")["lat"].quantile(0.99) if serving.kind == "llm" else frame.groupby("s")["lat"].max()
    out[q.index.to_numpy(dtype=int)] = q.to_numpy()
    return out


def compare(summaries: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """{policy: {metric: {mean, std, min, max}}} over the seeds of each policy."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for policy, runs in summaries.items():
        out[policy] = {}
        for metric in SUMMARY_METRICS:
            values = np.array([float(r[metric]) for r in runs])
            out[policy][metric] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "min": float(values.min()),
                "max": float(values.max()),
            }
    return out
