"""Energy mode (DynamoLLM): pick tensor parallelism, batch size, GPU power limit and instance count that
minimise energy per request while meeting the latency SLO at a high quantile of the forecast load.

For every (tensor parallelism, batch size) the Splitwise profile gives prefill time, time per output
token and GPU power; every power limit of the GPU curve (policies/power_profiles.py) slows the GPU only
when its draw would exceed the limit (`GpuCurve.loss`) and then saves the difference. With limit `L` and
batch `b`: TTFT = prefill(b) / speed, TBT = token(b) / speed; an instance completes `b / e2e` requests per
second, so `n = ceil(load / that)` instances serve the `load_quantile` of the forecast rate; each instance
then holds `load * e2e / n` requests on average (Little), which sets its power. Energy per request =
n · tp · GPU watts / load. The cheapest configuration meeting both SLOs and the GPU budget wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from policies.distribution import QuantileForecast
from policies.power_profiles import gpu_curve, llm_configs, llm_profile
from policies.types import Candidate, Decision, InvalidPolicyInput, register

_GPU_OF = {"a100-80gb": "a100", "h100-80gb": "h100"}


@dataclass(frozen=True)
class EnergyInput:
    """A served model's forecast request rate (req/s), request shape, SLOs and GPU budget."""

    target: str
    request_rate: QuantileForecast | None
    prompt_tokens: float
    output_tokens: float
    ttft_slo_ms: float
    tbt_slo_ms: float
    max_gpus: int
    model: str = "llama2-70b"
    hardware: str = "a100-80gb"

    def __post_init__(self) -> None:
        for name in ("prompt_tokens", "output_tokens", "ttft_slo_ms", "tbt_slo_ms"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0:
                raise InvalidPolicyInput(f"{name} must be a finite positive number, got {value!r}")
        if self.max_gpus < 1:
            raise InvalidPolicyInput(f"max_gpus must be >= 1, got {self.max_gpus}")
        if self.hardware not in _GPU_OF:
            raise InvalidPolicyInput(f"hardware must be one of {sorted(_GPU_OF)}, got {self.hardware!r}")
        if not any(m == self.model and h == self.hardware for m, h, _ in llm_configs()):
            raise InvalidPolicyInput(
                f"model {self.model!r} on {self.hardware!r} is not in the Splitwise profile"
            )


@register("energy_mode", "energy")
class EnergyModePolicy:
    """Minimum energy per request under TTFT/TBT SLOs at the forecast load quantile (module docstring)."""

    def __init__(self, load_quantile: float = 0.95, keep_candidates: int = 12) -> None:
        if not 0.5 <= load_quantile < 1.0:
            raise InvalidPolicyInput(f"load_quantile must lie in [0.5, 1), got {load_quantile}")
        self.load_quantile = load_quantile
        self.keep_candidates = keep_candidates

    def options(self, inputs: EnergyInput, load: float) -> list[Candidate]:
        """Every (tp, batch, limit) with its instance count, latency, power and energy per request."""
        curve = gpu_curve(_GPU_OF[inputs.hardware])
        out: list[Candidate] = []
        for model, hw, tp in llm_configs():
            if model != inputs.model or hw != inputs.hardware:
                continue
            prof = llm_profile(model, hw, tp)
            for b in prof.batch_sizes:
                demand = prof.gpu_watts(b)
                for limit in curve.limits:
                    speed = 1.0 - float(curve.loss(demand, limit))  # type: ignore[arg-type]
                    ttft = prof.prefill_ms(inputs.prompt_tokens, b) / speed
                    tbt = prof.token_time_ms(b) / speed
                    e2e_s = (ttft + inputs.output_tokens * tbt) / 1000.0
                    n = max(1, math.ceil(load * e2e_s / b - 1e-9))
                    in_flight = load * e2e_s / n
                    gpu_w = min(prof.gpu_watts(in_flight), float(curve.draw_at(limit)))
                    energy = n * tp * gpu_w / max(load, 1e-9)
                    ok = ttft <= inputs.ttft_slo_ms and tbt <= inputs.tbt_slo_ms and n * tp <= inputs.max_gpus
                    params: dict[str, Any] = {
                        "tensor_parallel": tp, "batch_size": b, "power_limit_watts": limit, "instances": n,
                        "gpus": n * tp, "ttft_ms": round(ttft, 3), "tbt_ms": round(tbt, 3),
                        "gpu_watts": round(gpu_w, 3), "power_watts": round(n * tp * gpu_w, 3),
                    }  # fmt: skip
                    note = "" if ok else _why_not(inputs, ttft, tbt, n * tp)
                    out.append(Candidate("configure", params, energy, 0.0, ok, note))
        return out

    def _max_capacity(self, inputs: EnergyInput) -> dict[str, Any]:
        """Conservative configuration: every GPU, uncapped, the smallest tp and a batch meeting TBT."""
        curve = gpu_curve(_GPU_OF[inputs.hardware])
        tps = sorted(tp for m, h, tp in llm_configs() if m == inputs.model and h == inputs.hardware)
        tp = next((t for t in tps if t <= inputs.max_gpus), tps[0])
        prof = llm_profile(inputs.model, inputs.hardware, tp)
        fits = [b for b in prof.batch_sizes if prof.token_time_ms(b) <= inputs.tbt_slo_ms] or [
            prof.batch_sizes[0]
        ]
        return {
            "tensor_parallel": tp, "batch_size": max(fits), "power_limit_watts": curve.max_limit,
            "instances": max(1, inputs.max_gpus // tp), "gpus": max(1, inputs.max_gpus // tp) * tp,
        }  # fmt: skip

    def decide(self, inputs: EnergyInput) -> Decision:
        name: str = type(self).name  # type: ignore[attr-defined]
        if inputs.request_rate is None:
            return Decision(
                kind="energy",
                target=inputs.target,
                action="configure",
                params=self._max_capacity(inputs),
                policy=name,
                fallback_reason="no request-rate forecast: every GPU uncapped (maximum capacity)",
            )
        load = max(inputs.request_rate.window_quantile(self.load_quantile), 0.0)
        options = self.options(inputs, max(load, 1e-6))
        feasible = sorted(
            (c for c in options if c.feasible), key=lambda c: (c.expected_cost, c.params["gpus"])
        )
        evidence = {
            "request_rate": inputs.request_rate.summary(),
            "load_quantile": self.load_quantile,
            "load_rps": load,
        }
        shown = (
            feasible[: self.keep_candidates]
            + sorted((c for c in options if not c.feasible), key=lambda c: c.expected_cost)[
                : max(2, self.keep_candidates // 4)
            ]
        )
        details: dict[str, Any] = {"options_weighed": len(options), "options_feasible": len(feasible)}
        if not feasible:
            return Decision(
                kind="energy",
                target=inputs.target,
                action="configure",
                params=self._max_capacity(inputs),
                policy=name,
                forecast=evidence,
                candidates=shown,
                details=details,
                fallback_reason=f"no configuration meets TTFT<={inputs.ttft_slo_ms:g} ms and "
                f"TBT<={inputs.tbt_slo_ms:g} ms at {load:.3g} req/s within {inputs.max_gpus} GPUs: "
                "maximum capacity",
            )
        best = feasible[0]
        uncapped = [
            c
            for c in feasible
            if c.params["power_limit_watts"] == max(o.params["power_limit_watts"] for o in options)
        ]
        reference = min(uncapped, key=lambda c: c.expected_cost) if uncapped else None
        details.update(
            energy_j_per_request=best.expected_cost,
            energy_saving_vs_best_uncapped=(
                None if reference is None else 1.0 - best.expected_cost / max(reference.expected_cost, 1e-12)
            ),
            power_source=llm_profile(
                inputs.model, inputs.hardware, best.params["tensor_parallel"]
            ).power_source,
            curve_source=gpu_curve(_GPU_OF[inputs.hardware]).source,
        )
        return Decision(
            kind="energy",
            target=inputs.target,
            action="configure",
            params=dict(best.params),
            policy=name,
            forecast=evidence,
            candidates=shown,
            details=details,
        )


def _why_not(inputs: EnergyInput, ttft: float, tbt: float, gpus: int) -> str:
    reasons = []
    if ttft > inputs.ttft_slo_ms:
        reasons.append(f"TTFT {ttft:.0f} ms > SLO")
    if tbt > inputs.tbt_slo_ms:
        reasons.append(f"TBT {tbt:.1f} ms > SLO")
    if gpus > inputs.max_gpus:
        reasons.append(f"needs {gpus} GPUs > {inputs.max_gpus}")
    return "; ".join(reasons)
