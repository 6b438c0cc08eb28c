"""Server power, power domains with budgets, and the power policy (POLCA) capping GPUs in closed loop.

Per node and step: `host_watts + gpus x idle` plus, for each GPU hosting a replica, the replica's draw
above idle (Splitwise power by batch for LLM replicas, linear in utilisation otherwise). A per-GPU power
limit caps that draw at what the GPU curve (`policies.power_profiles`, Zeus) says a loaded GPU draws under
the limit, and costs the throughput `GpuCurve.loss` gives. Nodes are split into domains of
`nodes_per_domain`, each with `budget_fraction` x its nameplate as budget. Every `interval_seconds` the
power policy (`power_polca`, or `power_reactive`, or `none`) decides each domain's caps from a forecast of
the domain total: the empirical quantiles of its last `forecast_window` totals, held flat over the window
(no look-ahead). Hysteresis state (`details["calm_windows"]`) is passed back next time, as the service does.
A domain with no caps in force whose recent peak stays below `quiet_fraction` (0.7) of its budget is not
asked (POLCA holds there: T_uncap is 0.8, T1 0.9); that keeps large clusters fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from forecasting.types import DEFAULT_QUANTILES
from policies.catalog import load_all
from policies.distribution import QuantileForecast
from policies.power_model import PowerDomainInput, ServerState
from policies.power_profiles import GpuCurve, gpu_curve
from policies.types import build_policy
from replay.traces import ReplayError


class PowerModel:
    """Power of every node, per-domain budgets, caps in force, and the power policy deciding them."""

    def __init__(self, config: dict[str, Any], nodes: int, gpus_per_node: int, step_s: float) -> None:
        self.profile = str(config.get("gpu_profile", "a100"))
        try:
            self.curve: GpuCurve = gpu_curve(self.profile)
        except Exception as exc:
            raise ReplayError(f"power.gpu_profile: {exc}") from None
        self.nodes, self.gpus = nodes, gpus_per_node
        self.host_w = float(config.get("host_watts", 600.0))
        per_domain = max(int(config.get("nodes_per_domain", 20)), 1)
        self.domain_of = np.arange(nodes) // per_domain
        self.domains = int(self.domain_of.max()) + 1
        nameplate = self.host_w + self.gpus * self.curve.nameplate
        sizes = np.bincount(self.domain_of, minlength=self.domains)
        self.budget = float(config.get("budget_fraction", 0.8)) * nameplate * sizes
        self.priority = np.where(np.arange(nodes) % 2 == 0, 1, 0)  # alternate high / low priority nodes
        self.limit = np.full(nodes, np.inf)
        self.brake = np.zeros(self.domains, dtype=bool)
        self.calm = np.zeros(self.domains, dtype=int)
        self.window = max(int(config.get("forecast_window", 30)), 3)
        self.horizon = max(int(config.get("forecast_steps", 6)), 1)
        self.epsilon = float(config.get("epsilon", 0.01))
        self.interval = max(round(float(config.get("interval_seconds", 60.0)) / step_s), 1)
        self.history: list[np.ndarray] = []
        self.asked = 0
        self.quiet = float(config.get("quiet_fraction", 0.7))
        """Domains with no caps whose recent peak is below this share of the budget are not asked."""
        self.step_s = step_s
        name = str(config.get("policy", "power_polca"))
        self.policy: Any = None
        if name != "none":
            load_all()
            try:
                self.policy = build_policy(name)
            except Exception as exc:
                raise ReplayError(f"power.policy: {exc}") from None
        self.policy_name = name

    def draw(
        self, replicas_on: np.ndarray, gpus_per_replica: int, gpu_watts: float, up: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(power per node W, throughput loss per node) given replicas per node and the per-GPU demand."""
        idle = self.curve.idle_watts
        busy_gpus = np.minimum(replicas_on * gpus_per_replica, self.gpus)
        demand = np.full(self.nodes, max(gpu_watts, idle))
        limit = np.where(self.brake[self.domain_of], self.curve.min_limit, self.limit)
        capped = np.minimum(
            demand, np.where(np.isfinite(limit), self.curve.draw_at(np.minimum(limit, 1e9)), np.inf)
        )
        loss = np.where(
            np.isfinite(limit), self.curve.loss(demand, np.minimum(limit, self.curve.max_limit)), 0.0
        )
        watts = self.host_w + self.gpus * idle + busy_gpus * (capped - idle)
        return np.where(up, watts, 0.0), np.where(busy_gpus > 0, loss, 0.0)

    def domain_totals(self, node_watts: np.ndarray) -> np.ndarray:
        return np.bincount(self.domain_of, weights=node_watts, minlength=self.domains)

    def observe(self, totals: np.ndarray) -> None:
        self.history.append(totals)
        if len(self.history) > self.window:
            self.history.pop(0)

    def decide(self, step: int, now_s: float, node_watts: np.ndarray) -> int:
        """Run the power policy for every domain if this is a decision step; returns cap changes made."""
        if self.policy is None or step % self.interval or len(self.history) < 3:
            return 0
        recent = np.stack(self.history)  # (window, domains)
        changes = 0
        peak = recent.max(axis=0)
        for d in range(self.domains):
            members = np.flatnonzero(self.domain_of == d)
            free = not self.brake[d] and not np.isfinite(self.limit[members]).any()
            if free and peak[d] < self.quiet * self.budget[d]:
                continue  # nothing to cap and far below every threshold: the policy would hold
            self.asked += 1
            q = np.quantile(recent[:, d], DEFAULT_QUANTILES)
            q = q + np.linspace(0.0, 1e-6, len(q))  # strictly increasing knots even for a flat history
            forecast = QuantileForecast(tuple(DEFAULT_QUANTILES), np.tile(q, (self.horizon, 1)), self.step_s)
            servers = tuple(
                ServerState(
                    name=f"node-{n}",
                    priority=int(self.priority[n]),
                    profile=self.profile,
                    gpus=self.gpus,
                    power_watts=float(node_watts[n]),
                    host_watts=self.host_w,
                    power_limit_watts=None if not np.isfinite(self.limit[n]) else float(self.limit[n]),
                    braked=bool(self.brake[d]),
                )
                for n in members
            )
            decision = self.policy.decide(
                PowerDomainInput(
                    f"domain-{d}",
                    float(self.budget[d]),
                    servers,
                    forecast,
                    epsilon=self.epsilon,
                    now_ts=now_s,
                    calm_windows=int(self.calm[d]),
                )
            )
            self.calm[d] = int(decision.details.get("calm_windows", 0))
            limits = decision.params.get("power_limits_watts", {})
            new = np.array(
                [np.inf if limits.get(f"node-{n}") is None else float(limits[f"node-{n}"]) for n in members]
            )
            brake = bool(decision.params.get("brake", False))
            changes += int((new != self.limit[members]).any() or brake != self.brake[d])
            self.limit[members] = new
            self.brake[d] = brake
        return changes

    def capped_nodes(self) -> int:
        return int((np.isfinite(self.limit) | self.brake[self.domain_of]).sum())
