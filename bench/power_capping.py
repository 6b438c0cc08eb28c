"""Power capping bench: breach rate vs eps, who gets capped, throughput lost, and extra servers per budget.

Generating process (seeded; no raw power time series exists in the shared data, so one is derived):

* Load (real): the Azure LLM inference trace (code service, ~1 h, 8,819 requests; CC BY 4.0). It is
  replayed `hours` times, each pass circularly shifted by its own random offset. Every request becomes
  `pool / 4` copies (the per-server rate of 4 servers sharing the trace, as in forecasting/power_data.py),
  each jittered by U(0, 30 s) and sent to a uniformly random server of the pool: servers share the
  trace's minute-scale bursts (correlated power), not its exact arrivals.
* Service (real profile): Splitwise llama2-70b on 8 x A100-80GB (tensor parallel 8): prefill time
  log-log interpolated in the prompt size, decode = generated tokens x mean time per token.
* Power (real profile + assumptions): per GPU, while any prefill runs it draws the profile's mean
  peak-power fraction of the 400 W TDP; otherwise `TDP x f(decoding requests)` with `f` the profile's
  average-power fraction by batch (idle 60 W at zero). Host 700 W per server, per-server efficiency
  offset (sd 3%), 1% noise; 0.1 s ticks averaged into 10 s bins. A capped GPU draws at most its limit
  and loses throughput by the curve of policies/power_profiles.py (V100 Zeus curve scaled to A100).
* Priorities: 50% of servers low (0), 30% medium (1), 20% high (2), shuffled.

The first `history_hours` are history: they fit the bench forecaster (`LogArForecaster`: log-linear
in the last measured total, empirical residual quantiles per horizon) and give `oversubscription` the
distribution of the baseline domain's total. The remaining hours are replayed with a policy deciding
every 10 s bin from the measured power of the bin before.
The no-oversubscription baseline holds `floor(budget / nameplate)` servers (8 x 400 W + 700 W each).

    .venv/bin/python bench/power_capping.py [--data-dir ../shared/data] [--eps 0.01] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from forecasting.power_data import PROFILE_FILE, TRACE_FILE, load_profile, load_trace  # noqa: E402
from forecasting.types import DEFAULT_QUANTILES  # noqa: E402
from policies.distribution import QuantileForecast  # noqa: E402
from policies.oversubscription import OversubscriptionInput, OversubscriptionPolicy  # noqa: E402
from policies.power import PolcaPowerPolicy, ReactivePowerPolicy  # noqa: E402
from policies.power_model import PowerDomainInput, ServerState  # noqa: E402
from policies.power_profiles import gpu_curve  # noqa: E402

console = Console(width=190)
LEVELS = (*DEFAULT_QUANTILES, 0.995, 0.999)
GPUS, TDP, IDLE, HOST, TICK, BIN = 8, 400.0, 60.0, 700.0, 0.1, 10.0
CURVE = gpu_curve("a100")


def simulate_demand(data_dir: Path, pool: int, hours: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(servers, bins) uncapped demand in W, and each server's priority (module docstring)."""
    rng = np.random.default_rng(seed)
    trace, prof = load_trace(data_dir / TRACE_FILE), load_profile(data_dir / PROFILE_FILE)
    splitwise = pd.read_csv(data_dir / PROFILE_FILE)
    sel = splitwise[(splitwise["hardware"] == "a100-80gb") & (splitwise["tensor_parallel"] == 8)]
    peak = float(sel.loc[sel["peak_power"] > 0, "peak_power"].mean())
    one = float(trace["arrival_s"].max()) + 1.0
    n_ticks = int(hours * one / TICK)
    prefill = np.exp(
        np.interp(np.log(np.maximum(trace["prompt"], 1)), np.log(prof.prompt_sizes), np.log(prof.prompt_ms))
    )
    decode = trace["generated"].to_numpy() * prof.token_ms
    copies = max(1, pool // 4)
    arrival = np.concatenate(
        [(trace["arrival_s"].to_numpy() + rng.uniform(0, one)) % one + h * one for h in range(hours)]
    )
    arrival = np.repeat(arrival, copies) + rng.uniform(0, 30.0, len(arrival) * copies)
    pre_t = np.tile(np.repeat(prefill / 1000.0, copies), hours)
    dec_t = np.tile(np.repeat(decode / 1000.0, copies), hours)
    server = rng.integers(0, pool, len(arrival))
    x = np.concatenate([[0.0], prof.batch_sizes])
    f = np.maximum.accumulate(np.concatenate([[IDLE / TDP], prof.power_fraction]))
    per_bin = round(BIN / TICK)
    n_bins = n_ticks // per_bin
    out = np.empty((pool, n_bins))

    def running(start: np.ndarray, end: np.ndarray) -> np.ndarray:
        s = np.floor(start / TICK).astype(np.int64) % n_ticks
        e = s + np.maximum(1, np.round((end - start) / TICK).astype(np.int64))
        delta = np.zeros(n_ticks + 1)
        np.add.at(delta, s, 1.0)
        np.add.at(delta, np.minimum(e, n_ticks), -1.0)
        wrap = e > n_ticks  # circular replay: what runs past the end continues at the start
        delta[0] += wrap.sum()
        np.add.at(delta, e[wrap] - n_ticks, -1.0)
        return np.cumsum(delta)[:n_ticks]

    for j in range(pool):
        mine = server == j
        a, p, d = arrival[mine], pre_t[mine], dec_t[mine]
        in_prefill = running(a, a + p)
        decoding = running(a + p, a + p + d)
        gpu = np.where(in_prefill > 0, TDP * peak, TDP * np.interp(decoding, x, f))
        gpu = gpu[: n_bins * per_bin].reshape(n_bins, per_bin).mean(axis=1)
        watts = (HOST + GPUS * gpu) * (1.0 + rng.normal(0.0, 0.03))
        out[j] = watts * (1.0 + rng.normal(0.0, 0.01, n_bins))
    low, mid = pool // 2, pool * 3 // 10
    return out, rng.permutation(np.repeat([0, 1, 2], [low, mid, pool - low - mid]))


@dataclass
class Outcome:
    """What one replay measured."""

    label: str
    servers: int
    breach_rate: float
    lost: float
    capped_share: dict[int, float]
    lost_by_class: dict[int, float]
    order_violations: int
    brake_bins: int
    ms_per_decision: float


class LogArForecaster:
    """Per horizon h: log total[t+h] = a_h + b_h log total[t] + e, e's empirical quantiles (history).

    Mean reversion matters here: after a burst the total falls back, so unconditional ratios would be
    far too wide for the policy to ever stop capping."""

    def __init__(self, history: np.ndarray, steps: int) -> None:
        x = np.log(history)
        self.coef, self.resid = [], []
        for h in range(1, steps + 1):
            b, a = np.polyfit(x[:-h], x[h:], 1)
            self.coef.append((a, b))
            self.resid.append(np.quantile(x[h:] - (a + b * x[:-h]), LEVELS))

    def __call__(self, total: float) -> QuantileForecast:
        rows = [np.exp(a + b * np.log(total) + r) for (a, b), r in zip(self.coef, self.resid, strict=True)]
        return QuantileForecast(LEVELS, np.array(rows), step_seconds=BIN)


def replay(
    label: str, demand: np.ndarray, priority: np.ndarray, budget: float, eps: float, policy: object | None,
    forecaster: LogArForecaster, start: int, progress: Progress,
) -> Outcome:  # fmt: skip
    """Run `policy` (None = never cap) bin by bin over demand[:, start:]."""
    n, bins = demand.shape
    limits: list[float | None] = [None] * n
    brake, calm = False, 0
    power = demand.copy()
    loss = np.zeros((n, bins))
    capped = np.zeros((n, bins), dtype=bool)
    violations, brakes, spent, calls = 0, 0, 0.0, 0
    task = progress.add_task(label, total=bins - start)
    for t in range(start, bins):
        if policy is not None:
            srv = tuple(
                ServerState(
                    f"s{i}", int(priority[i]), "a100", GPUS, float(power[i, t - 1]), HOST, limits[i], brake
                )
                for i in range(n)
            )
            fc = forecaster(float(power[:, t - 1].sum()))
            tic = time.perf_counter()
            d = policy.decide(PowerDomainInput("bench", budget, srv, fc, eps, calm_windows=calm))  # type: ignore[attr-defined]
            spent += time.perf_counter() - tic
            calls += 1
            limits = [d.params["power_limits_watts"][f"s{i}"] for i in range(n)]
            brake, calm = bool(d.params["brake"]), int(d.details["calm_windows"])
        gpu_d = (demand[:, t] - HOST) / GPUS
        for i in range(n):
            if brake:
                cap_w = max(IDLE, 0.7 * CURVE.min_limit)
                loss[i, t] = 0.7 if gpu_d[i] > cap_w else 0.0
            elif (lim := limits[i]) is not None:
                cap_w = float(CURVE.draw_at(lim))
                loss[i, t] = float(CURVE.loss(np.array(gpu_d[i]), lim))
            else:
                continue
            capped[i, t] = True
            power[i, t] = min(demand[i, t], HOST + GPUS * cap_w)
        brakes += int(brake)
        if capped[:, t].any():
            lowest_uncapped = min((priority[i] for i in range(n) if not capped[i, t]), default=99)
            violations += int(any(capped[i, t] and priority[i] > lowest_uncapped for i in range(n)))
        progress.advance(task)
    sl = slice(start, bins)
    classes = sorted(set(priority.tolist()))
    return Outcome(
        label=label,
        servers=n,
        breach_rate=float((power[:, sl].sum(axis=0) > budget).mean()),
        lost=float(loss[:, sl].mean()),
        capped_share={c: float(capped[priority == c, sl].mean()) for c in classes},
        lost_by_class={c: float(loss[priority == c, sl].mean()) for c in classes},
        order_violations=violations,
        brake_bins=brakes,
        ms_per_decision=1000.0 * spent / max(calls, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--eps", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-servers", type=int, default=12)
    parser.add_argument("--pool", type=int, default=40)
    parser.add_argument("--hours", type=int, default=4)
    parser.add_argument("--history-hours", type=int, default=2)
    parser.add_argument(
        "--horizon", type=int, default=1, help="forecast steps (10 s each; decisions every step)"
    )
    parser.add_argument("--t1", type=float, default=0.9, help="power_polca T1 (fraction of the budget)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    nameplate = HOST + GPUS * CURVE.nameplate
    budget = args.baseline_servers * nameplate
    with console.status("simulating server power from the Azure trace and the Splitwise profile"):
        demand, priority = simulate_demand(args.data_dir, args.pool, args.hours, args.seed)
    history = demand.shape[1] // args.hours * args.history_hours
    n0 = int(budget // nameplate)
    hist = demand[:n0, :history].sum(axis=0)
    srv = tuple(
        ServerState(f"s{i}", int(priority[i]), "a100", GPUS, float(demand[i, history - 1]), HOST)
        for i in range(n0)
    )
    planning = QuantileForecast(LEVELS, np.quantile(hist, LEVELS)[None, :], BIN)
    new = ServerState("new", 0, "a100", GPUS, None, HOST)
    answer = OversubscriptionPolicy().decide(
        OversubscriptionInput(PowerDomainInput("bench", budget, srv, planning, args.eps), new)
    )
    k_cap, k_plain = answer.params["extra_servers"], answer.params["extra_servers_without_capping"]
    n = min(n0 + k_cap, args.pool)
    peak_fit = max(m for m in range(1, args.pool + 1) if demand[:m, :history].sum(axis=0).max() <= budget)
    forecaster = LogArForecaster(demand[:n, :history].sum(axis=0), args.horizon)
    outcomes = []
    with Progress(console=console, transient=True) as progress:
        outcomes.append(
            replay(
                "baseline (nameplate sizing)",
                demand[:n0],
                priority[:n0],
                budget,
                args.eps,
                None,
                forecaster,
                history,
                progress,
            )
        )
        for label, pol in (
            ("no capping", None),
            ("power_reactive", ReactivePowerPolicy()),
            ("power_polca", PolcaPowerPolicy(t1=args.t1, t2=max(args.t1, 0.97))),
        ):
            outcomes.append(
                replay(
                    f"{label} @ {n} servers",
                    demand[:n],
                    priority[:n],
                    budget,
                    args.eps,
                    pol,
                    forecaster,
                    history,
                    progress,
                )
            )
    replayed = args.hours - args.history_hours
    table = Table(
        title=f"power domain, budget {budget / 1000:.1f} kW, eps {args.eps:g}, {replayed} h replayed at 10 s"
    )
    for col in ("scenario", "servers", "breach rate", "throughput lost", "capped share p0/p1/p2",
                "lost p0/p1/p2", "order violations", "brake bins", "ms/decision"):  # fmt: skip
        table.add_column(col)
    for o in outcomes:
        table.add_row(
            o.label, str(o.servers), f"{o.breach_rate:.4f}", f"{o.lost:.4f}",
            "/".join(f"{o.capped_share.get(c, 0):.3f}" for c in (0, 1, 2)),
            "/".join(f"{o.lost_by_class.get(c, 0):.4f}" for c in (0, 1, 2)),
            str(o.order_violations), str(o.brake_bins), f"{o.ms_per_decision:.1f}",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"oversubscription answer at eps={args.eps:g}: +{k_cap} servers with capping headroom "
        f"(+{k_plain} without capping) over the {n0}-server nameplate baseline\n"
        f"servers the same budget holds: {n} vs {n0} nameplate-sized -> ratio {n / n0:.2f} "
        f"(+{n / n0 - 1:.0%}); vs {peak_fit} sized on the history's peak total -> ratio "
        f"{n / peak_fit:.2f} (+{n / peak_fit - 1:.0%})\n"
        f"power_polca measured breach rate {outcomes[-1].breach_rate:.4f} vs eps {args.eps:g}; "
        f"wall time {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
