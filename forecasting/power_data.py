"""Semi-synthetic GPU-server power series from a real LLM request trace and a real power profile.

There is no raw power time series in the shared data, so this module derives one, documented here:

* Load (real): the Azure LLM inference trace (code service, 2023-11-16, ~57 minutes, 8,819 requests,
  CC BY 4.0, Patel et al., ISCA 2024): arrival time, prompt tokens, generated tokens per request.
* Service time (real profile): SplitwiseSim's measured llama2-70b profile on DGX-A100 with 8-way tensor
  parallelism (MIT, Patel et al.): prefill time interpolated (log-log) in the prompt size at batch 1, plus
  `generated tokens x` the mean per-token decode time. Requests start on arrival (continuous batching,
  no queueing), so a server's load is the number of requests in flight.
* Power (real profile + assumptions): per GPU `P = TDP x f(in-flight requests)`, where `f` interpolates
  the profile's measured average-power fraction by batch size (1, 2, 4, 8, 16; forced non-decreasing)
  and `f(0) = idle / TDP`. Assumed: A100-80GB TDP 400 W, idle 60 W per GPU, 8 GPUs and 700 W of host
  power per server, a fixed per-server efficiency offset (sd 3%) and 1% measurement noise.
* Topology (assumed): `n_domains` power domains of `servers_per_domain` servers. Each domain replays the
  trace `repeats` times back to back (the trace has one hour only), each replay circularly shifted by its
  own seeded random offset (so domains and hours are not copies of each other), and
  its load balancer sends each request to a uniformly random server of the domain. Servers of one domain
  therefore share the trace's bursts: their power is positively correlated, as in a real cluster.

Power is sampled at 10 ms, averaged per `bin_s` (default 10 s) bin and reported in watts as metric
`power_w` with series `d<k>/s<j>`; there is no daily pattern (the source covers one hour). Evaluate::

    .venv/bin/python -m forecasting.power_data --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.backtest import backtest
from forecasting.metrics import coverage, mae
from forecasting.power import DOMAIN_PREFIX, PowerForecaster, domain_totals, exceedance_probability
from forecasting.types import InvalidSeriesError, quantile_columns

TRACE_FILE = "azure_llm_inference_2023/AzureLLMInferenceTrace_code.csv"
PROFILE_FILE = "splitwise_llm_perf_profile/perf_model.csv"
METRIC_NAME = "power_w"
_TICK_S = 0.01


@dataclass(frozen=True)
class A100Profile:
    """Service-time and power facts taken from the Splitwise profile (llama2-70b, A100-80GB, TP 8)."""

    prompt_sizes: np.ndarray  # tokens
    prompt_ms: np.ndarray  # prefill time at batch 1
    token_ms: float  # mean decode time per output token
    batch_sizes: np.ndarray
    power_fraction: np.ndarray  # average power / rated power, by batch size (non-decreasing)

    def service_seconds(self, prompt: np.ndarray, generated: np.ndarray) -> np.ndarray:
        """Prefill (log-log interpolation in prompt size, clamped to the profiled range) plus decode."""
        lp = np.interp(np.log(np.maximum(prompt, 1)), np.log(self.prompt_sizes), np.log(self.prompt_ms))
        return (np.exp(lp) + generated * self.token_ms) / 1000.0


def load_profile(path: str | Path) -> A100Profile:
    """Read the llama2-70b / a100-80gb / tensor_parallel 8 rows of the Splitwise perf_model.csv."""
    p = pd.read_csv(path)
    sel = p[(p["model"] == "llama2-70b") & (p["hardware"] == "a100-80gb") & (p["tensor_parallel"] == 8)]
    if sel.empty:
        raise InvalidSeriesError(f"{path} has no llama2-70b / a100-80gb / tensor_parallel=8 rows")
    pre = sel[sel["batch_size"] == 1].groupby("prompt_size")["prompt_time"].mean()
    pw = sel[sel["average_power"] > 0].groupby("batch_size")["average_power"].mean()
    return A100Profile(
        prompt_sizes=pre.index.to_numpy(dtype=float),
        prompt_ms=pre.to_numpy(dtype=float),
        token_ms=float(sel["token_time"].mean()),
        batch_sizes=pw.index.to_numpy(dtype=float),
        power_fraction=np.maximum.accumulate(pw.to_numpy(dtype=float)),
    )


def load_trace(path: str | Path) -> pd.DataFrame:
    """Requests of the Azure LLM trace: `arrival_s` (seconds from the first), `prompt`, `generated`."""
    raw = pd.read_csv(path)
    ts = pd.to_datetime(raw["TIMESTAMP"], format="mixed")
    arrival = (ts - ts.min()).dt.total_seconds().to_numpy()
    return pd.DataFrame(
        {"arrival_s": arrival, "prompt": raw["ContextTokens"], "generated": raw["GeneratedTokens"]}
    )


@dataclass(frozen=True)
class PowerGenerator:
    """Assumptions of the generator (see module docstring); `generate` is deterministic given `seed`."""

    n_domains: int = 4
    servers_per_domain: int = 4
    repeats: int = 3
    bin_s: float = 10.0
    gpus_per_server: int = 8
    gpu_tdp_w: float = 400.0
    gpu_idle_w: float = 60.0
    host_w: float = 700.0
    server_spread: float = 0.03
    noise: float = 0.01
    seed: int = 0
    start: str = "2023-11-16 18:17:00"

    def gpu_watts(self, profile: A100Profile, in_flight: np.ndarray) -> np.ndarray:
        """Per-GPU power for a number of requests in flight (idle at zero, profile fractions above)."""
        x = np.concatenate([[0.0], profile.batch_sizes])
        f = np.concatenate([[self.gpu_idle_w / self.gpu_tdp_w], profile.power_fraction])
        return self.gpu_tdp_w * np.interp(in_flight, x, np.maximum.accumulate(f))

    def generate(self, trace: pd.DataFrame, profile: A100Profile) -> tuple[pd.DataFrame, dict[str, str]]:
        """Long frame (series_id, metric, ts, value in W) of every server and the server -> domain map."""
        rng = np.random.default_rng(self.seed)
        one = float(trace["arrival_s"].max()) + 1.0
        span = one * self.repeats
        n_bins = int(span // self.bin_s)
        ticks_per_bin = round(self.bin_s / _TICK_S)
        n_ticks = n_bins * ticks_per_bin
        service = np.tile(
            profile.service_seconds(trace["prompt"].to_numpy(), trace["generated"].to_numpy()), self.repeats
        )
        times = pd.Timestamp(self.start, tz="UTC") + pd.to_timedelta(np.arange(n_bins) * self.bin_s, unit="s")
        parts, domains = [], {}
        for d in range(self.n_domains):
            base = trace["arrival_s"].to_numpy()
            arrival = np.concatenate(
                [(base + rng.uniform(0, one)) % one + r * one for r in range(self.repeats)]
            )
            server = rng.integers(0, self.servers_per_domain, size=len(arrival))
            for s in range(self.servers_per_domain):
                mine = server == s
                start = np.floor(arrival[mine] / _TICK_S).astype(np.int64)
                end = start + np.maximum(1, np.round(service[mine] / _TICK_S).astype(np.int64))
                delta = np.zeros(n_ticks + 1)
                np.add.at(delta, np.minimum(start, n_ticks), 1.0)
                np.add.at(delta, np.minimum(end, n_ticks), -1.0)
                # requests running past the end wrap around to the start (the replay is circular)
                over = end > n_ticks
                delta[0] += over.sum()
                np.add.at(delta, np.minimum(end[over] - n_ticks, n_ticks), -1.0)
                in_flight = np.cumsum(delta)[:n_ticks]
                gpu = self.gpu_watts(profile, in_flight).reshape(n_bins, ticks_per_bin).mean(axis=1)
                offset = 1.0 + rng.normal(0.0, self.server_spread)
                watts = (self.host_w + self.gpus_per_server * gpu) * offset
                watts = watts * (1.0 + rng.normal(0.0, self.noise, n_bins))
                sid = f"d{d}/s{s}"
                domains[sid] = f"d{d}"
                parts.append(
                    pd.DataFrame({"series_id": sid, "metric": METRIC_NAME, "ts": times, "value": watts})
                )
        return pd.concat(parts, ignore_index=True), domains


def generate_from(
    data_dir: str | Path, generator: PowerGenerator | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Generate from the Azure LLM trace and Splitwise profile under `data_dir` (layout of ../shared/data).

    Each file may also be gzipped (`.csv.gz`), as in the test data.
    """
    root = Path(data_dir)

    def find(rel: str) -> Path:
        for cand in (root / rel, root / (rel + ".gz")):
            if cand.exists():
                return cand
        raise InvalidSeriesError(f"missing {root / rel}[.gz]")

    gen = generator or PowerGenerator()
    return gen.generate(load_trace(find(TRACE_FILE)), load_profile(find(PROFILE_FILE)))


def evaluate(
    frame: pd.DataFrame, domains: dict[str, str], *, horizon: int = 6, step: int = 2, fast: bool = False
) -> dict[str, float]:
    """Backtest the power forecaster; score servers, domain totals and the two shortcut aggregations.

    Also checks P(total > budget) (budget = each domain's training p80 total): the mean forecast
    probability against the observed frequency.
    """
    lgb = {"n_estimators": 40 if fast else 100, "max_train_rows": 20_000, "num_leaves": 15, "num_threads": 1}
    # The totals are given to the backtest as series of their own (exactly what PowerForecaster adds when
    # it has `domains`), so that the backtest scores them like the servers.
    data = pd.concat([frame, domain_totals(frame, domains)], ignore_index=True)
    model = PowerForecaster(base_config={"base_config": lgb, "horizon": horizon, "calibration_steps": 60})
    result = backtest(model, data, horizon, step=step)
    s = result.scored
    lv = model.quantiles
    qc = quantile_columns(lv)
    out: dict[str, float] = {}
    is_dom = s["series"].str.startswith(DOMAIN_PREFIX).to_numpy()
    for label, rows in (("server", s.loc[~is_dom]), ("domain", s.loc[is_dom])):
        y, q = rows["y"].to_numpy(), rows[qc].to_numpy()
        out[f"{label}_coverage_80"] = coverage(y, q, lv, 0.8)
        out[f"{label}_mae_w"] = mae(y, rows["q0.5"])
    # shortcuts: sum of server quantiles (comonotone) and sum of independent server draws
    srv = s.loc[~is_dom].assign(domain=lambda f: f["series"].map(domains))
    truth = s.loc[is_dom].assign(domain=lambda f: f["series"].str.removeprefix(DOMAIN_PREFIX))
    keys = ["domain", "cutoff", "timestamp"]
    como = srv.groupby(keys)[qc].sum().reset_index().merge(truth[[*keys, "y"]], on=keys)
    out["domain_coverage_80_sum_of_quantiles"] = coverage(como["y"], como[qc].to_numpy(), lv, 0.8)
    rng = np.random.default_rng(0)
    u = rng.uniform(lv[0], lv[-1], size=(len(srv), 400))
    draws = np.stack([np.interp(u[i], lv, row) for i, row in enumerate(srv[qc].to_numpy())])
    summed = pd.DataFrame(draws).groupby([srv[k].to_numpy() for k in keys]).sum()
    indep_q = np.quantile(summed.to_numpy(), lv, axis=1).T
    indep = pd.DataFrame(indep_q, columns=qc).assign(
        **{k: summed.index.get_level_values(i) for i, k in enumerate(keys)}
    )
    indep = indep.merge(truth[[*keys, "y"]], on=keys)
    out["domain_coverage_80_independent_sum"] = coverage(indep["y"], indep[qc].to_numpy(), lv, 0.8)
    # chance constraint: P(total > budget) vs what happened
    train_totals = (
        frame.assign(domain=frame["series_id"].map(domains)).groupby(["domain", "ts"])["value"].sum()
    )
    budget = truth["domain"].map(train_totals.groupby(level=0).quantile(0.8)).to_numpy()
    p = exceedance_probability(truth, budget, lv)
    out["p_exceed_mean_forecast"] = float(p.mean())
    out["p_exceed_observed"] = float((truth["y"].to_numpy() > budget).mean())
    naive_model = PowerForecaster("seasonal_naive", base_config={"season_length": 1})
    naive = backtest(naive_model, data, horizon, step=step)
    ns = naive.scored
    nd = ns["series"].str.startswith(DOMAIN_PREFIX).to_numpy()
    out["naive_server_mae_w"] = mae(ns.loc[~nd, "y"], ns.loc[~nd, "q0.5"])
    out["naive_domain_mae_w"] = mae(ns.loc[nd, "y"], ns.loc[nd, "q0.5"])
    out["naive_domain_coverage_80"] = coverage(ns.loc[nd, "y"], ns.loc[nd, qc].to_numpy(), lv, 0.8)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Generate the series and print the evaluation as JSON."""
    parser = argparse.ArgumentParser(description="Power forecaster on semi-synthetic GPU power")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true")
    args = parser.parse_args(argv)
    frame, domains = generate_from(args.data_dir, PowerGenerator(seed=args.seed))
    result = evaluate(frame, domains, fast=args.fast)
    print(json.dumps({k: round(v, 4) for k, v in result.items()}, indent=2))


if __name__ == "__main__":
    main()
