"""The closed-loop replay: step the trace, let the policy decide on what it has seen, serve, measure.

`run_replay` is the public entry point (CLI, REST layer, Ray sweep): it reads a trace, runs one policy
and writes `summary.json`, `timeline.csv` and `report.html` into a fresh directory that is renamed into
place only when everything is written, so a failed run leaves no half-written result.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from policies.slo import ScalingSlo
from policies.types import PolicyError
from replay.adapters import OracleAdapter, PolicyView, build_adapter, replicas_for
from replay.cluster import Cluster, build_cluster
from replay.power import PowerModel
from replay.serving import build_serving
from replay.traces import ReplayError, Trace, load_trace

CONFIG_KEYS = {
    "step_seconds", "decision_interval_seconds", "speed", "tile", "cold_start_seconds", "observe",
    "serving", "scaling", "cluster", "power", "max_steps", "warmup_seconds", "initial_replicas",
}  # fmt: skip
INITIAL_STATES = ("static-plan", "cold")
"""`initial_replicas` by name: the static plan a takeover replaces (default), or a cold start at
`scaling.min_replicas`; an integer or one integer per workload states the current replicas outright."""
Progress = Callable[[float], None]
SLO_QUANTILE_MISS = 0.01
"""A decision window missed a p99 latency SLO when more than this share of its requests were over it."""


@dataclass
class Recorder:
    """Per-step state the summary, timeline and report are computed from."""

    steps: int
    workloads: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("wait", "batch", "speed", "util", "replicas", "ready", "capacity", "load"):
            self.arrays[name] = np.zeros((self.steps, self.workloads))
        for name in ("power", "capped", "breach_domains", "nodes_up", "band_lo", "band_mid", "band_hi"):
            self.arrays[name] = np.full(self.steps, np.nan if name.startswith("band") else 0.0)


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check the top-level keys and section types; returns the config (a copy)."""
    if not isinstance(config, dict):
        raise ReplayError("config must be a mapping (JSON object / YAML mapping)")
    if unknown := set(config) - CONFIG_KEYS:
        raise ReplayError(f"unknown config keys {sorted(unknown)}; known: {sorted(CONFIG_KEYS)}")
    for section in ("serving", "scaling", "cluster", "power"):
        if not isinstance(config.get(section, {}), dict):
            raise ReplayError(f"config.{section} must be a mapping")
    return json.loads(json.dumps(config))


def simulate(
    trace: Trace, policy: str, config: dict[str, Any], seed: int = 0, progress: Progress | None = None
) -> tuple[Recorder, dict[str, Any]]:
    """Run one policy over a trace; returns the recorded state and run facts (actions, failures...)."""
    config = validate_config(config)
    scfg, dt = dict(config.get("scaling", {})), trace.step_seconds
    try:
        slo = ScalingSlo.from_mapping(scfg, where="scaling")
    except PolicyError as exc:
        raise ReplayError(str(exc)) from None
    serving = build_serving(trace, serving_config(trace, dict(config.get("serving", {})), slo))
    check_objective(serving, slo)
    load = serving.observed_load()  # (S, W) in the unit of replica capacity
    steps, n_w = load.shape
    if config.get("max_steps"):
        steps = min(steps, int(config["max_steps"]))
    k = max(round(float(config.get("decision_interval_seconds", 60.0)) / dt), 1)
    cold = max(round(float(config.get("cold_start_seconds", 120.0)) / dt), 0)
    cap = serving.replica_capacity
    util_target = slo.target_utilisation
    observe = str(config.get("observe", "mean"))
    if observe not in ("mean", "max"):
        raise ReplayError(f"observe must be 'mean' or 'max', got {observe!r}")
    n_obs = steps // k
    obs_all = load[: n_obs * k].reshape(n_obs, k, n_w)
    obs_all = obs_all.mean(axis=1) if observe == "mean" else obs_all.max(axis=1)
    peaks = obs_all.max(axis=0) if n_obs else load.max(axis=0)
    ccfg = dict(config.get("cluster", {}))
    ccfg.setdefault("gpus_per_replica", serving.gpus_per_replica)
    peak_replicas = int(replicas_for(load.max(axis=0), cap, util_target).sum())
    cluster = build_cluster(ccfg, peak_replicas, steps, dt, seed)
    power = PowerModel(dict(config.get("power", {})), cluster.nodes, cluster.gpus_per_node, dt)
    if policy == "bayesian" and scfg.get("target_utilisation") is None:
        # the SLO is the knob: without a stated target, plan to the utilisation the latency bound allows
        scfg["target_utilisation"] = float(serving.safe_utilisation)
    try:
        oracle_facts = {
            "safe_utilisation": serving.safe_utilisation,
            "failure_steps": [f.step for f in cluster.failures],
            "replicas_per_node": cluster.replicas_per_node,
        }
        adapter = build_adapter(policy, scfg, cap, k * dt, peaks, load[:steps], k + cold, oracle_facts)
    except PolicyError as exc:
        raise ReplayError(f"policy {policy!r}: {exc}") from None
    rec = Recorder(steps, n_w)
    a = rec.arrays
    ready = initial_replicas(config.get("initial_replicas"), scfg, peaks, cap, util_target)
    initial = ready.copy()
    pending = np.zeros((cold + 1, n_w), dtype=int)  # ring buffer by ready step
    backlog = np.zeros(n_w)
    violations = np.zeros((n_w, 2), dtype=int)
    window_requests = np.zeros(n_w)  # requests of the decision interval in progress, and those over the SLO
    window_over = np.zeros(n_w)
    late = np.zeros((n_w, 2))  # requests of the finished windows, and those over the SLO
    interval_speed = np.ones((n_obs + 1, n_w))  # slowest replica speed seen in each interval
    desired_prev = ready.copy()
    actions, loss = 0, np.zeros(cluster.nodes)
    for s in range(steps):
        now = s * dt
        slot = s % (cold + 1)
        ready += pending[slot]
        pending[slot] = 0
        before = cluster.placement(int(ready.sum() + pending.sum()), now)
        for failure in cluster.fail_due(s, now):  # replicas on the failed node are lost (restarted below)
            ready = _remove(ready, int(before[failure.node]))
            before[failure.node] = 0
        if s % k == 0:
            j = s // k
            if s:  # the interval just finished: did it miss the SLO (as an operator reports outcomes)?
                violations[:, 0] += 1
                violations[:, 1] += window_missed_slo(window_requests, window_over)
                late[:, 0] += window_requests
                late[:, 1] += window_over
                window_requests[:], window_over[:] = 0.0, 0.0
            current = ready + pending.sum(axis=0)
            if isinstance(adapter, OracleAdapter):
                first = adapter.decide_at(s)
                placed = cluster.placement(int(first.sum()), now)
                desired = adapter.decide_at(s, window_speed(cluster, placed, loss, now, (k + cold) * dt))
            else:
                view = PolicyView(
                    now,
                    obs_all[:j],
                    current.copy(),
                    violations.copy(),
                    backlog.copy(),
                    interval_speed[:j],
                    late.copy(),
                )
                desired = np.asarray(adapter.decide(view), dtype=int)
                band = adapter.forecast_band()
                if band is not None:
                    a["band_lo"][s : s + k], a["band_mid"][s : s + k], a["band_hi"][s : s + k] = np.nansum(
                        band, axis=0
                    )
            desired = np.maximum(desired, 0)
            actions += int((desired != desired_prev).sum())
            desired_prev = desired
            diff = desired - current
            free = cluster.placement(10**9, now).sum() - int(current.sum())
            grow = _fit(np.maximum(diff, 0), max(int(free), 0))
            pending[(s + cold) % (cold + 1)] += grow  # every scale-out waits, the first one too
            if not cold:
                ready += pending[slot]
                pending[slot] = 0
            shrink = np.maximum(-diff, 0)
            take = np.minimum(shrink, pending.sum(axis=0))
            pending = _drain(pending, take, s, cold)
            ready = np.maximum(ready - (shrink - take), 0)
        total = int(ready.sum() + pending.sum())
        on_node = cluster.placement(total, now)
        placed = on_node.sum()
        if placed < total:  # failures left too few slots: cancel starting replicas, then ready ones
            excess = int(total - placed)
            starting = pending.sum(axis=0)
            m = min(excess, int(starting.sum()))
            pending = _drain(pending, starting - _remove(starting, m), s, cold)
            ready = _remove(ready, excess - m)
        weight = on_node / max(on_node.sum(), 1)
        deg = cluster.degradation_at(now)
        speed = float(((1.0 - deg) * (1.0 - loss) * weight).sum()) if on_node.sum() else 1.0
        speeds = np.full(n_w, speed)
        result = serving.step(s, ready * cap, speeds, backlog)
        requests, over = serving.step_slo(s, result, speeds)
        window_requests += requests
        window_over += over
        j_now = min(s // k, n_obs)
        interval_speed[j_now] = np.minimum(interval_speed[j_now], speeds)
        busy = ready.sum()
        batch = float((result.batch * ready).sum() / busy) if busy else 0.0
        util = float((result.utilisation * ready).sum() / busy) if busy else 0.0
        per_gpu = float(serving.gpu_busy(np.array(batch), np.array(util)))
        up = cluster.up(now)
        ready_on = cluster.placement(int(ready.sum()), now)
        node_w, loss = power.draw(ready_on, serving.gpus_per_replica, per_gpu, up)
        totals = power.domain_totals(node_w)
        power.observe(totals)
        power.decide(s, now, node_w)
        a["wait"][s], a["batch"][s], a["speed"][s], a["util"][s] = (
            result.wait_s, result.batch, speeds, result.utilisation,
        )  # fmt: skip
        a["replicas"][s], a["ready"][s], a["capacity"][s], a["load"][s] = (
            ready + pending.sum(axis=0), ready, ready * cap * speeds, load[s],
        )  # fmt: skip
        a["power"][s], a["capped"][s] = totals.sum(), power.capped_nodes()
        a["breach_domains"][s], a["nodes_up"][s] = (totals > power.budget).sum(), up.sum()
        if progress is not None and (s % 500 == 0 or s == steps - 1):
            progress((s + 1) / steps)
    facts = {
        "scaling_actions": actions,
        "initial_replicas": initial,
        "cluster": cluster,
        "power": power,
        "serving": serving,
        "decision_steps": k,
        "slo_windows": violations.copy(),  # per workload: (decision windows, windows that missed the SLO)
        "forecaster_error": getattr(adapter, "last_error", None),
    }
    return rec, facts


def serving_config(trace: Trace, serving: dict[str, Any], slo: ScalingSlo) -> dict[str, Any]:
    """The serving section with the objective's latency bound as the SLO the requests are scored
    against (an objective that names one and a different `serving.slo_seconds` is a contradiction)."""
    bound = slo.objective.max_seconds
    if bound is None:
        return serving
    if serving.get("slo_seconds") is not None and float(serving["slo_seconds"]) != bound:
        raise ReplayError(
            f"scaling.max_seconds ({bound:g}) and serving.slo_seconds ({serving['slo_seconds']}) disagree; "
            "state the latency bound once"
        )
    out = {**serving, "slo_seconds": bound}
    if trace.format == "azure-llm" and slo.objective.metric != "late_fraction":
        out["slo_metric"] = "ttft" if slo.objective.metric == "p99_ttft" else "latency"
    return out


def check_objective(serving: Any, slo: ScalingSlo) -> None:
    """Refuse an objective no capacity can meet: a latency bound below what a request takes alone."""
    fastest = float(serving.fastest_latency())
    if serving.slo_s <= fastest:
        raise ReplayError(
            f"the objective {slo.objective.describe()} cannot be met: with latency SLO {serving.slo_s:g} s, "
            f"a typical request takes {fastest:.3g} s on an idle replica; raise the bound"
        )


def initial_replicas(
    spec: Any, scfg: dict[str, Any], peaks: np.ndarray, cap: np.ndarray, util: float
) -> np.ndarray:
    """The replicas every policy starts from (the same for all, so a run measures the policy, not its
    start): `static-plan` (default; what static peak provisions: a takeover of the plan users run
    today), `cold` (a new workload at `scaling.min_replicas`), an integer, or one integer per workload."""
    n_w = len(peaks)
    low = int(scfg.get("min_replicas", 1))
    high = scfg.get("max_replicas")
    if spec is None or spec == "static-plan":
        out = replicas_for(peaks, cap, util)
    elif spec == "cold":
        out = np.full(n_w, low)
    elif isinstance(spec, int) and not isinstance(spec, bool) and spec >= 0:
        out = np.full(n_w, spec)
    elif (
        isinstance(spec, list)
        and len(spec) == n_w
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in spec)
    ):
        out = np.array(spec)
    else:
        raise ReplayError(
            f"initial_replicas must be one of {', '.join(INITIAL_STATES)}, an integer >= 0 or a list of "
            f"{n_w} such integers (one per workload), got {spec!r}"
        )
    out = np.maximum(out, low)
    return (np.minimum(out, int(high)) if high is not None else out).astype(int)


def window_missed_slo(requests: np.ndarray, over: np.ndarray, share: float = SLO_QUANTILE_MISS) -> np.ndarray:
    """Per workload: did the window miss its SLO, i.e. were more than `share` of its requests over the
    latency target (a p99 SLO misses when over 1 % are)? A window without requests did not."""
    return (requests > 0) & (over > share * requests)


def window_speed(cluster: Cluster, placed: np.ndarray, loss: np.ndarray, now: float, span_s: float) -> float:
    """The slowest replica-weighted speed, (1 - interference) x (1 - power-cap loss), over the hours
    of [now, now + span] (what the oracle is told about the capacity it will get)."""
    weight = placed / placed.sum() if placed.sum() else cluster.up(now) / max(cluster.up(now).sum(), 1)
    hours = range(int(now // 3600.0), int((now + span_s) // 3600.0) + 1)
    return min(
        float(((1.0 - cluster.degradation_at(h * 3600.0)) * (1.0 - loss) * weight).sum()) for h in hours
    )


def _remove(ready: np.ndarray, count: int) -> np.ndarray:
    """Take `count` replicas away, from the workloads that have the most (largest remainder)."""
    out = ready.copy()
    for _ in range(max(count, 0)):
        if out.sum() <= 0:
            break
        out[int(np.argmax(out))] -= 1
    return out


def _fit(want: np.ndarray, free: int) -> np.ndarray:
    """Scale-outs that fit in `free` slots, shared in proportion to what each workload asked for."""
    if want.sum() <= free:
        return want
    return _fit_share(want, free)


def _fit_share(want: np.ndarray, budget: int) -> np.ndarray:
    share = np.floor(want * budget / max(want.sum(), 1)).astype(int)
    return np.minimum(share, want)


def _drain(pending: np.ndarray, take: np.ndarray, s: int, cold: int) -> np.ndarray:
    """Cancel `take` pending replicas per workload, the ones that would be ready last first."""
    out = pending.copy()
    left = take.copy()
    for back in range(cold + 1):
        slot = (s + cold - back) % (cold + 1)
        cut = np.minimum(out[slot], left)
        out[slot] -= cut
        left -= cut
    return out


def run_replay(
    trace_path: str | Path,
    trace_format: str,
    policy: str,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    output_dir: str | Path | None = None,
    progress: Progress | None = None,
    report: bool = True,
) -> dict[str, Any]:
    """Replay `policy` over a trace; write summary.json, timeline.csv and report.html into `output_dir`
    (atomically: a temporary sibling renamed into place) and return the summary. Raises ReplayError."""
    from replay.report import write_report
    from replay.summary import summarise, timeline_frame

    config = validate_config(config or {})
    trace = load_trace(
        trace_path,
        trace_format,
        float(config.get("step_seconds", 10.0)),
        float(config.get("speed", 1.0)),
        int(config.get("tile", 1)),
    )
    rec, facts = simulate(trace, policy, config, seed, progress)
    summary = summarise(trace, policy, seed, config, rec, facts)
    if output_dir is None:
        return summary
    out = Path(output_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
        timeline_frame(rec, trace.step_seconds).to_csv(tmp / "timeline.csv", index=False)
        if report:
            write_report(tmp / "report.html", {policy: (summary, rec)}, trace.step_seconds)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
