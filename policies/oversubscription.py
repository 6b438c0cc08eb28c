"""How many more servers a power domain holds at risk eps (POLCA's oversubscription answer).

Adding `k` servers like `new_server` adds, at every total quantile, the new servers' idle draw plus their
capacity share of the dynamic power (they run at the domain's average utilisation and rise with the same
bursts — comonotone, the conservative reading). Two answers, both by bisection on `k`:

* without capping: the largest `k` with P(total_k > budget) <= eps at every step of the window;
* with capping headroom: the largest `k` for which some plan of the capping ladder (policies/power.py)
  keeps P(capped total_k > capped_target x budget) <= eps (default 0.9 = the capping policy's T1, so the
  runtime policy keeps its margin) while losing at most `max_expected_loss` of the domain's GPU
  throughput in expectation (rare peaks are shaved by capping, which is where POLCA's +30% comes from).

Both are set against nameplate sizing (every server at its provisioned power), the no-oversubscription
baseline. Pass a forecast covering the planning window (e.g. the peak hours), not only the next minutes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from policies.distribution import QuantileForecast
from policies.power_model import (
    DomainModel,
    PowerDomainInput,
    ServerState,
    demand_forecast,
    estimate_demand,
    ladder,
    priority_weights,
)
from policies.types import Candidate, Decision, InvalidPolicyInput, register


@dataclass(frozen=True)
class OversubscriptionInput:
    """A domain (with the forecast of its total) and the server model one would add."""

    domain: PowerDomainInput
    new_server: ServerState
    max_extra: int = 1000

    def __post_init__(self) -> None:
        if not isinstance(self.domain, PowerDomainInput):
            raise InvalidPolicyInput("domain must be a PowerDomainInput")
        if self.max_extra < 0:
            raise InvalidPolicyInput(f"max_extra must be >= 0, got {self.max_extra}")


@register("oversubscription", "oversubscription")
class OversubscriptionPolicy:
    """Largest number of extra servers at risk eps, with and without capping headroom (module docstring)."""

    def __init__(
        self,
        max_expected_loss: float = 0.01,
        stages: tuple[str, ...] = ("T1", "T2"),
        priority_weight: float = 10.0,
        capped_target: float = 0.9,
    ) -> None:
        if not 0.0 <= max_expected_loss < 1.0:
            raise InvalidPolicyInput(f"max_expected_loss must lie in [0, 1), got {max_expected_loss}")
        self.max_expected_loss = max_expected_loss
        self.stages = tuple(stages)
        self.priority_weight = priority_weight
        if not 0.0 < capped_target <= 1.0:
            raise InvalidPolicyInput(f"capped_target must lie in (0, 1], got {capped_target}")
        self.capped_target = capped_target

    def decide(self, inputs: OversubscriptionInput) -> Decision:
        dom, new = inputs.domain, inputs.new_server
        budget, eps = dom.budget_watts, dom.epsilon
        nameplate_extra = max(
            0, math.floor((budget - sum(s.nameplate_watts for s in dom.servers)) / new.nameplate_watts)
        )
        floor = sum(s.idle_watts for s in dom.servers)
        k_hi = max(0, min(inputs.max_extra, math.floor((budget - floor) / max(new.idle_watts, 1.0))))
        common: dict[str, Any] = {
            "budget_watts": budget,
            "epsilon": eps,
            "servers_now": len(dom.servers),
            "nameplate_extra": nameplate_extra,
            "nameplate_watts_per_new_server": new.nameplate_watts,
            "max_expected_loss": self.max_expected_loss,
        }
        if dom.total_forecast is None or dom.missing_power:
            why = (
                "no forecast of the domain total"
                if dom.total_forecast is None
                else f"no power reading for {dom.missing_power}"
            )
            return Decision(
                kind="oversubscription", target=dom.domain,
                action="add_servers" if nameplate_extra > 0 else "hold",
                params={"extra_servers": nameplate_extra, "extra_servers_without_capping": nameplate_extra},
                policy=type(self).name,  # type: ignore[attr-defined]
                fallback_reason=f"{why}: nameplate sizing (no oversubscription)", details=common,
            )  # fmt: skip
        measured, demand = estimate_demand(dom)
        base = demand_forecast(dom, measured, demand)
        tried: dict[tuple[int, bool], Candidate] = {}

        def check(k: int, capping: bool) -> bool:
            if (k, capping) not in tried:
                tried[(k, capping)] = self._assess(dom, new, base, demand, k, capping)
            return tried[(k, capping)].feasible

        plain = _largest(lambda k: check(k, False), k_hi)
        capped = _largest(lambda k: check(k, True), k_hi)
        best = max(plain, capped)
        chosen = tried.get((best, best == capped and capped > plain), tried.get((best, False)))
        action = "add_servers" if best > 0 else ("hold" if check(0, True) else "over_budget")
        n = len(dom.servers)
        return Decision(
            kind="oversubscription",
            target=dom.domain,
            action=action,
            params={"extra_servers": best, "extra_servers_without_capping": plain},
            policy=type(self).name,  # type: ignore[attr-defined]
            forecast={"demand_total": base.summary()},
            candidates=sorted(tried.values(), key=lambda c: (c.params["capping"], c.params["extra_servers"])),
            details={
                **common,
                "chosen": None if chosen is None else {"risk": chosen.risk, "note": chosen.note},
                "extra_fraction": best / n,
                "extra_fraction_without_capping": plain / n,
                "gain_over_nameplate_sizing": (n + best) / max(n + nameplate_extra, 1) - 1.0,
            },
        )

    def _assess(
        self,
        dom: PowerDomainInput,
        new: ServerState,
        base: QuantileForecast,
        demand: np.ndarray,
        k: int,
        capping: bool,
    ) -> Candidate:
        """Risk (and, with capping, the cheapest admissible plan) with `k` extra servers."""
        servers = list(dom.servers)
        idle = np.array([s.idle_watts for s in servers])
        cap = np.array([s.nameplate_watts for s in servers]) - idle
        util = float(np.maximum(demand - idle, 0.0).sum() / cap.sum())
        clones = [replace(new, name=f"{new.name}+{i}", power_watts=None) for i in range(k)]
        share = (new.nameplate_watts - new.idle_watts) / cap.sum()
        floor = idle.sum()
        q = base.values
        per_new = np.where(
            q >= floor, new.idle_watts + share * np.maximum(q - floor, 0.0), new.idle_watts * q / floor
        )
        total = QuantileForecast(base.levels, q + k * per_new, base.step_seconds)
        params: dict[str, Any] = {"extra_servers": k, "capping": capping}
        risk = total.window_exceedance(dom.budget_watts)
        if not capping or risk <= dom.epsilon:
            return Candidate(
                f"add_{k}", params, 0.0, risk, risk <= dom.epsilon, "no capping needed" if capping else ""
            )
        new_now = new.idle_watts + util * (new.nameplate_watts - new.idle_watts)
        all_servers = tuple(servers + clones)
        model = DomainModel(all_servers, np.concatenate([demand, np.full(k, new_now)]))
        weights = priority_weights(all_servers, self.priority_weight)
        gpus = float(sum(s.gpus for s in all_servers))
        best = None
        for plan in ladder(all_servers):
            if plan.stage not in self.stages:
                continue
            target = {"budget": dom.budget_watts, "target": self.capped_target * dom.budget_watts}
            ev = model.evaluate(plan, total, target, weights)
            admissible = ev.risks["target"] <= dom.epsilon and ev.lost_gpus / gpus <= self.max_expected_loss
            if admissible and (best is None or ev.cost < best.cost):
                best = ev
        if best is None:
            return Candidate(f"add_{k}", params, float("inf"), risk, False, "no admissible capping plan")
        note = f"with plan {best.plan.name}: expected loss {best.lost_gpus / gpus:.4f} of GPU throughput"
        return Candidate(
            f"add_{k}",
            {**params, "plan": best.plan.name},
            best.lost_gpus / gpus,
            best.risks["budget"],
            True,
            note,
        )


def _largest(ok: Any, hi: int) -> int:
    """Largest k in [0, hi] with ok(k), assuming ok is monotone (True then False); 0 if none."""
    if hi <= 0 or not ok(0):
        return 0
    if ok(hi):
        return hi
    lo, up = 0, hi  # ok(lo) and not ok(up)
    while up - lo > 1:
        mid = (lo + up) // 2
        if ok(mid):
            lo = mid
        else:
            up = mid
    return lo
