"""Inputs of the power policies and the model that turns a domain-total forecast into per-plan risk and cost.

The service forecasts each power domain's *total* (forecasting/power.py explains why the total, not the
sum of servers). To ask "what if these servers were capped at L watts per GPU?" the total is split into
servers with a **share model**: every server draws its idle floor plus a fixed share of the domain's
dynamic power (its share now), so at total quantile `q` server `s` draws
`p_s(q) = idle_s + w_s * (q - F)` (F = sum of floors). A cap clips `p_s` at what the GPU curve guarantees
under the limit. Clipping is monotone in `q`, so clipped knots are exactly the quantiles of the capped
total, and the expected throughput lost (from the profiled curve) integrates over the same knots. The
shares are comonotone (all servers rise together), which is the conservative reading for a budget.

When the forecast is of *measured* power and some caps bind now, the measured total hides demand: a
binding capped GPU is assumed to want `draw / throughput(limit)` (work queued at the uncapped rate), and
the forecast is scaled by estimated demand over measured power.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecasting.types import mean_from_quantiles
from policies.distribution import QuantileForecast
from policies.power_profiles import GpuCurve, gpu_curve
from policies.types import InvalidPolicyInput

BASES = ("measured", "demand")
"""What `PowerDomainInput.total_forecast` forecasts: measured power (under today's caps) or demand."""


def _finite(value: float, name: str, *, positive: bool = False) -> float:
    number = float(value)
    if not np.isfinite(number) or number < 0 or (positive and number == 0):
        raise InvalidPolicyInput(
            f"{name} must be a finite {'positive' if positive else 'non-negative'} number, got {value!r}"
        )
    return number


@dataclass(frozen=True)
class ServerState:
    """One server of a power domain as the service knows it now.

    `priority`: higher is more important (capped last). `profile`: GPU curve name (`gpu_models()`).
    `power_watts`: whole-server draw now, None when telemetry is missing (nameplate is then assumed).
    `host_watts`: non-GPU draw (CPU, fans, NICs), not affected by GPU caps.
    `power_limit_watts`: the per-GPU limit in force now, None when uncapped. `braked`: power brake on.
    """

    name: str
    priority: int
    profile: str
    gpus: int
    power_watts: float | None
    host_watts: float = 0.0
    power_limit_watts: float | None = None
    braked: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidPolicyInput("servers[].name must not be empty")
        if int(self.gpus) < 1:
            raise InvalidPolicyInput(f"servers[{self.name}].gpus must be >= 1, got {self.gpus}")
        if self.power_watts is not None:
            _finite(self.power_watts, f"servers[{self.name}].power_watts")
        _finite(self.host_watts, f"servers[{self.name}].host_watts")
        if self.power_limit_watts is not None:
            _finite(self.power_limit_watts, f"servers[{self.name}].power_limit_watts", positive=True)
        try:
            gpu_curve(self.profile)
        except InvalidPolicyInput as exc:
            raise InvalidPolicyInput(f"servers[{self.name}].profile: {exc}") from None

    @property
    def curve(self) -> GpuCurve:
        return gpu_curve(self.profile)

    @property
    def idle_watts(self) -> float:
        return self.host_watts + self.gpus * self.curve.idle_watts

    @property
    def nameplate_watts(self) -> float:
        """Provisioned (uncapped maximum) power of the server."""
        return self.host_watts + self.gpus * self.curve.nameplate


@dataclass(frozen=True)
class PowerDomainInput:
    """One power domain at one decision time, as built by the service from the database.

    `total_forecast`: quantiles of the domain total (W) over the next window, None when there is none
    (the policy falls back to the reactive rule). `epsilon`: allowed P(total > budget) at any step.
    `calm_windows`: hysteresis state, the number of consecutive earlier windows in which relaxing caps was
    judged safe (each Decision returns the next value in `details["calm_windows"]`).
    """

    domain: str
    budget_watts: float
    servers: tuple[ServerState, ...]
    total_forecast: QuantileForecast | None = None
    epsilon: float = 0.01
    now_ts: float | None = None
    calm_windows: int = 0
    forecast_basis: str = "measured"

    def __post_init__(self) -> None:
        object.__setattr__(self, "servers", tuple(self.servers))
        _finite(self.budget_watts, "budget_watts", positive=True)
        if not self.servers:
            raise InvalidPolicyInput(f"servers: power domain {self.domain!r} has no servers")
        names = [s.name for s in self.servers]
        if len(set(names)) != len(names):
            raise InvalidPolicyInput(f"servers: names must be unique in domain {self.domain!r}")
        if not 0.0 < float(self.epsilon) < 0.5:
            raise InvalidPolicyInput(f"epsilon must lie in (0, 0.5), got {self.epsilon!r}")
        if int(self.calm_windows) < 0:
            raise InvalidPolicyInput(f"calm_windows must be >= 0, got {self.calm_windows!r}")
        if self.forecast_basis not in BASES:
            raise InvalidPolicyInput(f"forecast_basis must be one of {BASES}, got {self.forecast_basis!r}")
        if self.total_forecast is not None and not isinstance(self.total_forecast, QuantileForecast):
            raise InvalidPolicyInput("total_forecast must be a QuantileForecast or None")

    @property
    def missing_power(self) -> list[str]:
        return [s.name for s in self.servers if s.power_watts is None]


@dataclass(frozen=True)
class Plan:
    """A cap assignment: per-server per-GPU limit (None = uncapped), or the power brake on all."""

    name: str
    stage: str
    limits: tuple[float | None, ...]
    brake: bool = False

    def as_params(self, names: Sequence[str]) -> dict[str, Any]:
        limits = {n: (None if self.brake else lim) for n, lim in zip(names, self.limits, strict=True)}
        return {"power_limits_watts": limits, "brake": self.brake, "stage": self.stage}


@dataclass(frozen=True)
class PlanEval:
    """A plan's capped-total forecast, risk against thresholds, and expected throughput lost."""

    plan: Plan
    total: QuantileForecast
    risks: dict[str, float]
    loss: np.ndarray = field(repr=False)
    cost: float
    lost_gpus: float


@dataclass(frozen=True)
class DomainModel:
    """Share model of one domain (module docstring), vectorised over servers of one GPU profile."""

    servers: tuple[ServerState, ...]
    demand_now: np.ndarray
    brake_fraction: float = 0.7
    brake_throughput: float = 0.3

    @property
    def idle(self) -> np.ndarray:
        return np.array([s.idle_watts for s in self.servers])

    @property
    def weights(self) -> np.ndarray:
        """Each server's share of the dynamic (above-idle) power."""
        dyn = np.maximum(self.demand_now - self.idle, 0.0)
        if dyn.sum() <= 0:
            dyn = np.array([s.nameplate_watts for s in self.servers]) - self.idle
        return dyn / dyn.sum()

    def server_power(self, total: np.ndarray) -> np.ndarray:
        """(S, *total.shape) per-server draw at domain total `total` (sums back to `total`)."""
        idle, w = self.idle, self.weights
        floor = idle.sum()
        shape = (-1,) + (1,) * np.ndim(total)
        above = idle.reshape(shape) + w.reshape(shape) * np.maximum(total - floor, 0.0)
        below = idle.reshape(shape) * (np.minimum(total, floor) / floor)
        return np.where(np.asarray(total) >= floor, above, below)

    def evaluate(
        self, plan: Plan, demand: QuantileForecast, thresholds: Mapping[str, float], weights: np.ndarray
    ) -> PlanEval:
        """Capped-total quantiles, P(exceed) per threshold, expected throughput lost per server."""
        p = self.server_power(demand.values)
        capped = p.copy()
        loss = np.zeros(len(self.servers))
        for profile in sorted({s.profile for s in self.servers}):
            idx = np.array([i for i, s in enumerate(self.servers) if s.profile == profile])
            curve = gpu_curve(profile)
            host = np.array([self.servers[i].host_watts for i in idx])[:, None, None]
            gpus = np.array([self.servers[i].gpus for i in idx], dtype=float)[:, None, None]
            gpu_demand = (p[idx] - host) / gpus
            if plan.brake:
                brake_w = max(curve.idle_watts, self.brake_fraction * curve.min_limit)
                capped[idx] = np.minimum(p[idx], host + gpus * brake_w)
                lost = np.where(gpu_demand > brake_w, 1.0 - self.brake_throughput, 0.0)
            else:
                lim = np.array([np.inf if plan.limits[i] is None else plan.limits[i] for i in idx])
                on = np.isfinite(lim)
                if not on.any():
                    continue
                safe_lim = np.where(on, lim, curve.max_limit)[:, None, None]
                bound = np.where(on[:, None, None], host + gpus * curve.bound_at(safe_lim), np.inf)
                capped[idx] = np.minimum(p[idx], bound)
                lost = np.where(on[:, None, None], curve.loss(gpu_demand, safe_lim), 0.0)
            loss[idx] = mean_from_quantiles(lost, demand.levels).mean(axis=-1)
        total = QuantileForecast(demand.levels, capped.sum(axis=0), demand.step_seconds)
        risks = {k: total.window_exceedance(v) for k, v in thresholds.items()}
        gpus_all = np.array([s.gpus for s in self.servers], dtype=float)
        return PlanEval(
            plan=plan,
            total=total,
            risks=risks,
            loss=loss,
            cost=float((weights * gpus_all * loss).sum()),
            lost_gpus=float((gpus_all * loss).sum()),
        )


def estimate_demand(inputs: PowerDomainInput) -> tuple[np.ndarray, np.ndarray]:
    """(measured, demand) per server now: nameplate where telemetry is missing; binding caps lifted."""
    measured = np.array(
        [s.nameplate_watts if s.power_watts is None else s.power_watts for s in inputs.servers]
    )
    demand = measured.copy()
    for i, s in enumerate(inputs.servers):
        if s.power_watts is None or (s.power_limit_watts is None and not s.braked):
            continue
        curve = s.curve
        limit = curve.min_limit if s.braked else float(s.power_limit_watts)  # type: ignore[arg-type]
        gpu_now = (s.power_watts - s.host_watts) / s.gpus
        if gpu_now >= 0.95 * float(curve.draw_at(limit)):  # the cap binds: demand is hidden above it
            wanted = min(curve.nameplate, gpu_now / max(curve.throughput_at(limit), 1e-6))
            demand[i] = s.host_watts + s.gpus * wanted
    return measured, demand


def demand_forecast(inputs: PowerDomainInput, measured: np.ndarray, demand: np.ndarray) -> QuantileForecast:
    """The domain-total demand forecast: the input forecast, scaled up by hidden demand if measured."""
    forecast = inputs.total_forecast
    if forecast is None:
        raise InvalidPolicyInput("total_forecast is missing")
    if inputs.forecast_basis == "demand" or measured.sum() <= 0:
        return forecast
    return forecast.scaled(float(demand.sum() / measured.sum()))


def priority_weights(servers: Sequence[ServerState], base: float) -> np.ndarray:
    """Cost weight per server: `base ** rank` of its priority among the domain's distinct priorities."""
    ranks = {p: r for r, p in enumerate(sorted({s.priority for s in servers}))}
    return np.array([base ** ranks[s.priority] for s in servers], dtype=float)


def ladder(servers: Sequence[ServerState], top_stage_name: str = "T2") -> list[Plan]:
    """Escalating cap plans: the lowest priority class at ever lower limits, then the next class on top of
    the lower classes at their minimum, ...; plans that touch the top class belong to stage T2."""
    classes = sorted({s.priority for s in servers})
    depth = max(len(s.curve.limits) - 1 for s in servers)

    def limit(s: ServerState, d: int) -> float | None:
        lims = s.curve.limits
        return None if d == 0 else lims[max(len(lims) - 1 - d, 0)]

    plans: list[Plan] = []
    for ci, cls in enumerate(classes):
        stage = top_stage_name if ci == len(classes) - 1 else "T1"
        for d in range(1, depth + 1):
            limits = tuple(
                limit(s, depth) if s.priority < cls else limit(s, d) if s.priority == cls else None
                for s in servers
            )
            plans.append(Plan(f"cap_p{cls}_level{d}", stage, limits))
    return plans
