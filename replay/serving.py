"""How replicas serve a trace: offered work per step, capacity, queueing and per-request latency.

A fluid model, vectorised over workloads (the assumptions are listed in docs/replay.md):

* `LlmServing` (azure-llm traces): each replica is one Splitwise instance (model, GPU, tensor
  parallelism) with `max_batch` slots (continuous batching). A request occupies a slot for
  `prefill(prompt, batch 1) + (output - 1) x token_time(b)`, `b` the replica's mean concurrency
  (Little's law, clipped to 1..max_batch) — exactly the profile's end-to-end time for one request at
  batch b. Load (what policies observe) is offered concurrency at full batch; a replica's capacity is
  `max_batch`.
* `RateServing` (long traces): the series is a load rate; a replica serves `replica_capacity` of it;
  latency is `service_time / (1 - min(rho, 0.95))` (processor sharing) plus the queue wait.

Both carry backlog: work beyond what the ready replicas (slowed by interference and power caps) finish in
a step waits, and a request arriving in a step waits for the backlog ahead of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from policies.power_profiles import LlmProfile, llm_profile
from replay.traces import ReplayError, Trace

MAX_WAIT_S = 3600.0
"""Waits are capped here (e.g. no replica at all): far above any SLO, it keeps the numbers finite."""


def _step_sums(step: np.ndarray, values: np.ndarray, steps: int) -> np.ndarray:
    return np.bincount(step, weights=values, minlength=steps)[:steps]


@dataclass
class StepResult:
    """What one step produced per workload: work done, queue, wait, batch and utilisation."""

    wait_s: np.ndarray
    batch: np.ndarray
    utilisation: np.ndarray


class LlmServing:
    """Splitwise-profiled LLM replicas serving the requests of an azure-llm trace."""

    kind = "llm"

    def __init__(self, trace: Trace, config: dict[str, Any]) -> None:
        if trace.requests is None:
            raise ReplayError("the LLM serving model needs a request trace (--trace-format azure-llm)")
        try:
            self.profile: LlmProfile = llm_profile(
                str(config.get("model", "llama2-70b")),
                str(config.get("hardware", "a100-80gb")),
                int(config.get("tensor_parallel", 4)),
            )
        except Exception as exc:
            raise ReplayError(f"serving: {exc}") from None
        self.dt = trace.step_seconds
        self.max_batch = int(config.get("max_batch", self.profile.batch_sizes[-1]))
        self.gpus_per_replica = self.profile.tensor_parallel
        req = trace.requests
        self.req_step = np.minimum((req.arrival_s // self.dt).astype(int), trace.steps - 1)
        lp = np.interp(
            np.log(np.maximum(req.prompt_tokens, 1.0)),
            np.log(self.profile.prompt_sizes),
            np.log(self.profile.prompt_ms),
        )
        self.req_prefill_s = np.exp(lp) / 1000.0
        self.req_decode = np.maximum(req.output_tokens - 1.0, 0.0)
        n = trace.steps
        self.count = _step_sums(self.req_step, np.ones_like(self.req_prefill_s), n)[:, None]
        self.prefill = _step_sums(self.req_step, self.req_prefill_s, n)[:, None]
        self.decode = _step_sums(self.req_step, self.req_decode, n)[:, None]
        self._by_step = np.argsort(self.req_step, kind="stable")
        self._step_bounds = np.searchsorted(self.req_step[self._by_step], np.arange(n + 1))
        self.replica_capacity = np.full(trace.load.shape[1], float(self.max_batch))
        self.slo_metric = str(config.get("slo_metric", "ttft"))
        if self.slo_metric not in ("ttft", "latency"):
            raise ReplayError(f"serving.slo_metric must be 'ttft' or 'latency', got {self.slo_metric!r}")
        self.slo_s = float(config.get("slo_seconds", 3.0))

    def fastest_latency(self) -> float:
        """The median request's TTFT (or latency) on an idle replica: no SLO below it can be met."""
        ttft = float(np.median(self.req_prefill_s)) if len(self.req_prefill_s) else 0.0
        if self.slo_metric == "ttft":
            return ttft
        return ttft + float(np.median(self.req_decode)) * float(self.token_s(np.array(1.0)))

    @property
    def safe_utilisation(self) -> float:
        """Highest utilisation that still meets the SLO with no queue: continuous batching keeps TTFT
        flat until the slots run out, so only a thin margin is kept."""
        return 0.95

    def token_s(self, batch: np.ndarray) -> np.ndarray:
        return np.interp(batch, self.profile.batch_sizes, self.profile.token_ms) / 1000.0

    def offered(self, s: int, batch: np.ndarray) -> np.ndarray:
        """Slot-seconds of work arriving in step `s` at concurrency `batch` (per workload)."""
        return self.prefill[s] + self.decode[s] * self.token_s(batch)

    def observed_load(self) -> np.ndarray:
        """(steps, W) offered concurrency at full batch (a replica's capacity is `max_batch` slots)."""
        return (self.prefill + self.decode * self.token_s(np.array(float(self.max_batch)))) / self.dt

    def requests_per_step(self) -> np.ndarray:
        return self.count

    def step(self, s: int, ready_cap: np.ndarray, speed: np.ndarray, backlog: np.ndarray) -> StepResult:
        """Advance one step: `ready_cap` slots per workload, `speed` <= 1, `backlog` updated in place."""
        rate = ready_cap * speed  # slot-seconds served per second
        replicas = np.maximum(ready_cap / self.max_batch, 1e-9)
        batch = np.ones_like(rate)
        for _ in range(2):  # fixed point of b = offered(b) / (dt * replicas), clipped to the batch range
            conc = self.offered(s, batch) / (self.dt * speed) / replicas
            batch = np.clip(conc, 1.0, self.max_batch)
        work = self.offered(s, batch)  # slot-seconds at nominal speed (speed scales the service rate)
        start = backlog.copy()
        total = backlog + work
        done = np.minimum(total, rate * self.dt)
        backlog[:] = total - done
        wait = np.where(rate > 0, (start + backlog) / 2.0 / np.maximum(rate, 1e-12), MAX_WAIT_S)
        util = np.where(ready_cap > 0, done / np.maximum(rate * self.dt, 1e-12), 0.0)
        return StepResult(np.minimum(wait, MAX_WAIT_S), batch, np.clip(util, 0.0, 1.0))

    def request_latency(
        self, idx: np.ndarray, wait: np.ndarray, batch: np.ndarray, speed: np.ndarray
    ) -> np.ndarray:
        """Latency against the SLO (TTFT, or TTFT + decode) of requests `idx`, given their step's state."""
        ttft = wait + self.req_prefill_s[idx] / speed
        if self.slo_metric == "ttft":
            return ttft
        return ttft + self.req_decode[idx] * self.token_s(batch) / speed

    def step_slo(self, s: int, result: StepResult, speed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(requests, requests over the SLO) of step `s`, per workload, as the step left them."""
        idx = self._by_step[self._step_bounds[s] : self._step_bounds[s + 1]]
        lat = self.request_latency(idx, result.wait_s[0], result.batch[0], speed[0])
        return np.array([float(len(idx))]), np.array([float((lat > self.slo_s).sum())])

    def latencies(
        self, wait: np.ndarray, batch: np.ndarray, speed: np.ndarray, util: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per request: (step, workload, latency in seconds against the SLO) from per-step state."""
        s = self.req_step
        lat = self.request_latency(np.arange(len(s)), wait[s, 0], batch[s, 0], speed[s, 0])
        return s, np.zeros_like(s), np.minimum(lat, MAX_WAIT_S)

    def gpu_busy(self, batch: np.ndarray, util: np.ndarray) -> np.ndarray:
        """Per-GPU draw (W) of a replica's GPUs at this batch (profile power by batch; idle share at 0)."""
        return self.profile.gpu_tdp_watts * np.interp(
            batch * (util > 0), (0.0, *self.profile.batch_sizes), (0.15, *self.profile.power_fraction)
        )

    def describe(self) -> dict[str, Any]:
        p = self.profile
        return {
            "kind": self.kind,
            "profile": f"{p.model}/{p.hardware}/tp{p.tensor_parallel}",
            "max_batch": self.max_batch,
            "slo": f"{self.slo_metric} <= {self.slo_s:g} s",
        }


class RateServing:
    """Replicas each serving `replica_capacity` units of a load-rate series (long traces)."""

    kind = "rate"

    def __init__(self, trace: Trace, config: dict[str, Any]) -> None:
        self.dt = trace.step_seconds
        self.load = trace.load
        cap = config.get("replica_capacity", "auto")
        if cap == "auto":  # eight replicas hold the trace's 99th percentile at full utilisation
            q = np.quantile(trace.load, 0.99, axis=0)
            self.replica_capacity = np.maximum(q / 8.0, 1e-6)
        else:
            self.replica_capacity = np.full(trace.load.shape[1], float(cap))
        if not (np.isfinite(self.replica_capacity).all() and (self.replica_capacity > 0).all()):
            raise ReplayError(f"serving.replica_capacity must be a positive number or 'auto', got {cap!r}")
        self.service_s = float(config.get("service_time_seconds", 0.1))
        self.slo_s = float(config.get("slo_seconds", 10 * self.service_s))
        self.requests_per_unit = float(config.get("requests_per_load_unit", 1.0))
        self.gpus_per_replica = int(config.get("gpus_per_replica", 1))
        self.max_batch = 1
        if self.service_s <= 0 or self.slo_s <= 0:
            raise ReplayError("serving.service_time_seconds and serving.slo_seconds must be positive")

    def fastest_latency(self) -> float:
        """A request's service time on an idle replica: no SLO at or below it can be met."""
        return self.service_s

    @property
    def safe_utilisation(self) -> float:
        """Highest utilisation that meets the SLO with no queue: service / (1 - rho) = SLO."""
        return float(np.clip(1.0 - self.service_s / self.slo_s, 0.05, 0.95))

    def observed_load(self) -> np.ndarray:
        return self.load

    def requests_per_step(self) -> np.ndarray:
        return self.load * self.dt * self.requests_per_unit

    def step(self, s: int, ready_cap: np.ndarray, speed: np.ndarray, backlog: np.ndarray) -> StepResult:
        rate = ready_cap * speed
        work = self.load[s] * self.dt
        start = backlog.copy()
        total = backlog + work
        done = np.minimum(total, rate * self.dt)
        backlog[:] = total - done
        wait = np.where(rate > 0, (start + backlog) / 2.0 / np.maximum(rate, 1e-12), MAX_WAIT_S)
        util = np.where(rate > 0, done / np.maximum(rate * self.dt, 1e-12), 1.0)
        return StepResult(np.minimum(wait, MAX_WAIT_S), np.ones_like(rate), np.clip(util, 0.0, 1.0))

    def step_latency(self, wait: np.ndarray, speed: np.ndarray, util: np.ndarray) -> np.ndarray:
        """Latency of a step's requests: service time slowed by interference and utilisation, plus wait."""
        return self.service_s / speed / (1.0 - np.minimum(util, 0.95)) + wait

    def step_slo(self, s: int, result: StepResult, speed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(requests, requests over the SLO) of step `s`, per workload, as the step left them."""
        requests = self.load[s] * self.dt * self.requests_per_unit
        lat = np.minimum(self.step_latency(result.wait_s, speed, result.utilisation), MAX_WAIT_S)
        return requests, np.where(lat > self.slo_s, requests, 0.0)

    def latencies(
        self, wait: np.ndarray, batch: np.ndarray, speed: np.ndarray, util: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One latency per (step, workload), weighted by its requests."""
        lat = self.step_latency(wait, speed, util)
        steps, wl = np.indices(lat.shape)
        return steps.ravel(), wl.ravel(), np.minimum(lat, MAX_WAIT_S).ravel()

    def gpu_busy(
        self, batch: np.ndarray, util: np.ndarray, idle: float = 60.0, tdp: float = 400.0
    ) -> np.ndarray:
        """Linear power model for rate replicas: idle + utilisation x (TDP - idle) per GPU."""
        return idle + util * (tdp - idle)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "replica_capacity": [round(float(c), 6) for c in self.replica_capacity],
            "service_time_seconds": self.service_s,
            "slo": f"latency <= {self.slo_s:g} s",
        }


def build_serving(trace: Trace, config: dict[str, Any]) -> LlmServing | RateServing:
    """The serving model that fits the trace format."""
    return LlmServing(trace, config) if trace.format == "azure-llm" else RateServing(trace, config)
