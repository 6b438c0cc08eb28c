"""Profiled power-performance curves the power policies choose from (real data shipped in `profiles/`).

* `GpuCurve` — how a GPU responds to an NVML power limit: relative throughput and the power it draws at
  full load under each limit, from the Zeus measurements (You et al., NSDI 2023; Apache-2.0): for every
  (workload, batch size, optimizer) the epoch time and average power per limit, normalised to the
  highest limit, then the median over workloads (the throughput a typical job keeps) and the *largest*
  measured draw (what a cap guarantees, so the chance constraint is not optimistic).
  Zeus measured A40, P100, RTX6000 and V100. The data-centre parts the LLM profiles use (A100, H100)
  were not measured, so `a100`/`h100` are the V100 curve against the limit as a fraction of the maximum,
  rescaled to their TDP, assuming a GPU at full load draws its limit (LLM prefill is compute bound).
  Every curve says where it came from in `source`.
* `LlmProfile` — SplitwiseSim's LLM inference profile (Patel et al., ISCA 2024; MIT): prefill time by
  prompt size and batch, time per output token and average power (fraction of TDP) by batch size and
  tensor parallelism. H100 rows have no power (zeros upstream), so H100 uses the A100 power fractions;
  the `-pcap` rows are derived upstream (see the profiles README) and are not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from policies.types import InvalidPolicyInput

PROFILE_DIR = Path(__file__).with_name("profiles")
ZEUS_DIR = PROFILE_DIR / "zeus_gpu_power_limits"
SPLITWISE_FILE = PROFILE_DIR / "splitwise_llm_perf_profile" / "perf_model.csv"

_ZEUS_IDLE_W = {"a40": 30.0, "p100": 30.0, "rtx6000": 25.0, "v100": 35.0}
"""Idle draw per GPU (W): the low end of each GPU's measured average power (README table)."""
_DERIVED = {"a100": (400.0, 60.0, "a100-80gb"), "h100": (700.0, 100.0, "h100-80gb")}
"""Derived curves: TDP (W), assumed idle draw (W) and the Splitwise hardware name they stand for."""


@dataclass(frozen=True)
class GpuCurve:
    """Response of one GPU model to its power limit; arrays are per limit, limits increasing."""

    name: str
    limits: tuple[float, ...]
    throughput: tuple[float, ...]
    full_power: tuple[float, ...]
    bound_power: tuple[float, ...]
    idle_watts: float
    source: str

    @property
    def max_limit(self) -> float:
        return self.limits[-1]

    @property
    def min_limit(self) -> float:
        return self.limits[0]

    @property
    def nameplate(self) -> float:
        """Power a GPU may draw uncapped (its maximum limit)."""
        return max(self.max_limit, self.full_power[-1])

    def throughput_at(self, limit: float) -> float:
        """Relative throughput at full load under `limit` (1 at the maximum limit)."""
        return float(np.interp(limit, self.limits, self.throughput))

    def bound_at(self, limit: float | np.ndarray) -> np.ndarray:
        """The most a GPU draws under `limit` (W): the worst measured overshoot, never above nameplate."""
        return np.minimum(np.interp(limit, self.limits, self.bound_power), self.nameplate)

    def draw_at(self, limit: float | np.ndarray) -> np.ndarray:
        """What a fully loaded GPU draws under `limit` (W), the typical (median) value."""
        return np.asarray(np.interp(limit, self.limits, self.full_power))

    def loss(self, demand_watts: np.ndarray, limit: float | np.ndarray) -> np.ndarray:
        """Fraction of throughput lost by a GPU that would draw `demand_watts` uncapped, under `limit`.

        Zero when the demand fits under the cap; else `1 - throughput(limit) / throughput(limit_d)` where
        `limit_d` is the limit at which a fully loaded GPU draws the demand (so a half-busy GPU loses less).
        """
        d = np.asarray(demand_watts, dtype=float)
        lim = np.broadcast_to(np.asarray(limit, dtype=float), d.shape)
        draw = self.draw_at(lim)
        perf_d = np.interp(np.interp(d, self.full_power, self.limits), self.limits, self.throughput)
        perf_cap = np.interp(lim, self.limits, self.throughput)
        with np.errstate(divide="ignore", invalid="ignore"):
            lost = np.where(d > draw, 1.0 - perf_cap / np.maximum(perf_d, 1e-9), 0.0)
        return np.clip(lost, 0.0, 1.0)


def _zeus_table(name: str) -> pd.DataFrame:
    """Per power limit: median throughput / draw relative to the highest limit, max overshoot (Zeus)."""
    raw = pd.read_csv(ZEUS_DIR / f"summary_power_{name}.csv")
    key = ["dataset", "network", "batch_size", "optimizer"]
    top = raw.loc[raw["power_limit"] == raw.groupby(key)["power_limit"].transform("max")]
    ref = top.set_index(key)[["time_per_epoch", "average_power"]]
    joined = raw.join(ref, on=key, rsuffix="_ref")
    joined = joined.assign(
        thr=joined["time_per_epoch_ref"] / joined["time_per_epoch"],
        over=joined["average_power"] / joined["power_limit"],
    )
    table = joined.groupby("power_limit").agg(
        thr=("thr", "median"),
        draw=("average_power", "median"),
        bound=("average_power", "max"),
        over=("over", "max"),
    )
    table["thr"] = np.minimum.accumulate(table["thr"].to_numpy()[::-1])[::-1]  # non-decreasing in the limit
    table["thr"] = table["thr"] / table["thr"].iloc[-1]
    table["draw"] = np.maximum.accumulate(table["draw"].to_numpy())
    table["bound"] = np.maximum.accumulate(table["bound"].to_numpy())
    return table


@cache
def gpu_curve(name: str) -> GpuCurve:
    """The curve of a GPU model: one of `gpu_models()` (case-insensitive)."""
    key = name.lower()
    if key in _ZEUS_IDLE_W:
        t = _zeus_table(key)
        return GpuCurve(
            name=key,
            limits=tuple(float(x) for x in t.index),
            throughput=tuple(t["thr"].round(6)),
            full_power=tuple(t["draw"].round(3)),
            bound_power=tuple(t["bound"].round(3)),
            idle_watts=_ZEUS_IDLE_W[key],
            source=f"zeus summary_power_{key}.csv (measured)",
        )
    if key in _DERIVED:
        tdp, idle, _ = _DERIVED[key]
        t = _zeus_table("v100")
        frac = t.index.to_numpy(dtype=float) / float(t.index.max())
        limits = np.round(frac * tdp, 1)
        over = np.maximum(1.0, t["over"].to_numpy())
        return GpuCurve(
            name=key,
            limits=tuple(float(x) for x in limits),
            throughput=tuple(t["thr"].round(6)),
            full_power=tuple(float(x) for x in limits),
            bound_power=tuple(float(x) for x in np.round(limits * over, 3)),
            idle_watts=idle,
            source=f"derived: zeus v100 curve vs limit/max-limit rescaled to {tdp:g} W TDP (not measured)",
        )
    raise InvalidPolicyInput(f"unknown GPU profile {name!r}; known: {', '.join(gpu_models())}")


def gpu_models() -> tuple[str, ...]:
    """Names `gpu_curve` accepts."""
    return (*sorted(_ZEUS_IDLE_W), *sorted(_DERIVED))


@dataclass(frozen=True)
class LlmProfile:
    """Splitwise inference profile of one (model, hardware, tensor parallelism); times in ms."""

    model: str
    hardware: str
    tensor_parallel: int
    gpu_tdp_watts: float
    batch_sizes: tuple[int, ...]
    token_ms: tuple[float, ...]
    prefill_batch_factor: tuple[float, ...]
    power_fraction: tuple[float, ...]
    prompt_sizes: tuple[float, ...]
    prompt_ms: tuple[float, ...]
    power_source: str

    def prefill_ms(self, prompt_tokens: float, batch: int) -> float:
        """Prefill time of a batch of `batch` prompts (log-log in prompt size, batch factor at 512)."""
        lp = np.interp(np.log(max(prompt_tokens, 1.0)), np.log(self.prompt_sizes), np.log(self.prompt_ms))
        factor = float(np.interp(batch, self.batch_sizes, self.prefill_batch_factor))
        return float(np.exp(lp)) * factor

    def token_time_ms(self, batch: float) -> float:
        return float(np.interp(batch, self.batch_sizes, self.token_ms))

    def gpu_watts(self, batch: float) -> float:
        """Average draw per GPU while serving `batch` requests (idle share of TDP below batch 1)."""
        x = (0.0, *self.batch_sizes)
        f = (0.15, *self.power_fraction)
        return self.gpu_tdp_watts * float(np.interp(batch, x, f))


@cache
def _splitwise() -> pd.DataFrame:
    return pd.read_csv(SPLITWISE_FILE)


@cache
def llm_profile(model: str, hardware: str, tensor_parallel: int) -> LlmProfile:
    """Read one (model, hardware, tp) slice of the Splitwise profile (batch sizes with power measured)."""
    p = _splitwise()
    sel = p[(p["model"] == model) & (p["hardware"] == hardware) & (p["tensor_parallel"] == tensor_parallel)]
    if sel.empty or hardware.endswith("-pcap"):
        raise InvalidPolicyInput(
            f"no Splitwise profile for model={model!r} hardware={hardware!r} "
            f"tensor_parallel={tensor_parallel}; known: {llm_configs()}"
        )
    power_rows = sel
    power_source = f"splitwise {hardware} (measured)"
    if not (sel["average_power"] > 0).any():  # H100 rows carry no power: borrow the A100's fractions
        power_rows = p[
            (p["model"] == model) & (p["hardware"] == "a100-80gb") & (p["tensor_parallel"] == tensor_parallel)
        ]
        power_source = "splitwise a100-80gb power fractions (H100 power not profiled)"
    power = power_rows[power_rows["average_power"] > 0].groupby("batch_size")["average_power"].mean()
    batches = [int(b) for b in power.index]
    by_batch = sel[sel["batch_size"].isin(batches)]
    token = by_batch.groupby("batch_size")["token_time"].mean()
    at512 = by_batch[by_batch["prompt_size"] == 512].groupby("batch_size")["prompt_time"].mean()
    single = sel[sel["batch_size"] == 1].groupby("prompt_size")["prompt_time"].mean()
    tdp = _DERIVED["h100" if hardware.startswith("h100") else "a100"][0]
    return LlmProfile(
        model=model,
        hardware=hardware,
        tensor_parallel=int(tensor_parallel),
        gpu_tdp_watts=tdp,
        batch_sizes=tuple(batches),
        token_ms=tuple(float(token[b]) for b in batches),
        prefill_batch_factor=tuple(float(at512[b] / at512[1]) for b in batches),
        power_fraction=tuple(float(x) for x in np.maximum.accumulate(power.to_numpy(dtype=float)).round(6)),
        prompt_sizes=tuple(float(x) for x in single.index),
        prompt_ms=tuple(float(x) for x in single.to_numpy()),
        power_source=power_source,
    )


def llm_configs() -> list[tuple[str, str, int]]:
    """(model, hardware, tensor_parallel) combinations the Splitwise profile covers (measured rows)."""
    p = _splitwise()
    p = p[~p["hardware"].str.endswith("-pcap")]
    combos = p[["model", "hardware", "tensor_parallel"]].drop_duplicates()
    return sorted((str(m), str(h), int(t)) for m, h, t in combos.itertuples(index=False))
