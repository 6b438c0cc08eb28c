"""Scaling chance constraint on real traces: measured violation rate vs the ε the policy promises.

For each NAB CloudWatch series bundled with the demo (service/sample_data/nab: EC2/RDS CPU, network-in,
ELB request counts; 5-minute samples, 14 days) a forecaster is backtested (rolling origin over the last 30%,
horizon 1 = the next decision window), then `policies.chance_check` replays the Bayesian scaling policy at
every cutoff with a per-replica capacity of a quarter of the series' median load. It prints, per series
and ε, the forecast's 80% coverage, the policy's stated risk, the measured violation rate (with its
binomial standard error) and replicas vs a static peak — the reference measured in the same run.

    .venv/bin/python bench/scaling_chance.py [--model lightgbm_aci] [--eps 0.02,0.05,0.1]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import track
from rich.table import Table

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from forecasting.backtest import backtest  # noqa: E402
from forecasting.base import create_forecaster  # noqa: E402
from policies.chance_check import check_chance_constraint  # noqa: E402

TRACES = sorted((ROOT / "service" / "sample_data" / "nab").glob("*.csv"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="lightgbm_aci")
    parser.add_argument("--eps", default="0.02,0.05,0.1")
    parser.add_argument("--test-fraction", type=float, default=0.3)
    args = parser.parse_args()
    epsilons = [float(e) for e in args.eps.split(",")]
    console = Console()
    table = Table(title=f"Bayesian scaling on NAB traces, forecaster {args.model}, horizon 1")
    for column in (
        "series",
        "cov80",
        "ε",
        "stated risk",
        "violations",
        "± s.e.",
        "mean replicas",
        "static peak",
    ):
        table.add_column(column, justify="right")
    total_windows, total_within = 0, 0
    for path in track(TRACES, description="backtesting", console=console):
        raw = pd.read_csv(path)
        frame = pd.DataFrame(
            {"series_id": path.stem, "ts": pd.to_datetime(raw["timestamp"], utc=True), "value": raw["value"]}
        )
        result = backtest(create_forecaster(args.model), frame, horizon=1, test_fraction=args.test_fraction)
        actual = frame.set_index("ts")["value"]
        capacity = float(actual.median()) / 4
        static_peak = int((actual.max() / (capacity * 0.8)) // 1 + 1)
        for eps in epsilons:
            check = check_chance_constraint(result.forecasts, actual, capacity, eps)
            within = check.violation_rate <= eps + 2 * check.standard_error
            total_windows += 1
            total_within += int(within)
            table.add_row(
                path.stem,
                f"{result.metrics['coverage_80']:.3f}",
                f"{eps:g}",
                f"{check.stated_risk:.3f}",
                f"{check.violation_rate:.3f}" + ("" if within else " ✗"),
                f"{check.standard_error:.3f}",
                f"{check.mean_replicas:.1f}",
                str(static_peak),
            )
    console.print(table)
    console.print(f"violation rate within ε + 2 s.e.: {total_within}/{total_windows} (series x ε)")


if __name__ == "__main__":
    main()
