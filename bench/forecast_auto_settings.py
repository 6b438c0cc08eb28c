"""What `auto`'s self-chosen settings are worth: the default against the same search with each choice fixed,
and against plain LightGBM, on the datasets of `bench/forecast_accuracy.py` under its protocol (min-max
scaled on the first 80 %, fitted once, walked through the last 20 % without refit).

Settings compared (see `forecasting.auto`):
  auto               the default: the per-series weight share and the calibration strength are both
                     chosen on the later half of the validation cutoffs
  auto_fixed         the weights frozen at fit (the default until 2026-12-05 re-chose them on the newest
                     scored forecasts as data arrives)
  auto_one_set       one set of weights for every step (the default gives the first quarter of the
                     horizon weights of their own, chosen on those steps' rows)
  auto_ev1, auto_ev4 online evidence of 1 or 4 validation windows per series (the default keeps 2)
  auto_long          the weights selected on a 144-step validation window instead of 48
  auto_before        each series' own weights and the full calibration (the default until 2026-12-04)
  auto_pooled        one set of weights for every series, the calibration strength chosen
  auto_uncalibrated  the default's weights, no interval calibration
  lightgbm           the LightGBM member alone, fitted on the whole training part

Scores at horizon 1, horizon 12 and over all 12 steps (more rows, less noise): CRPS, MAE of the median,
MSE of the mean, 80 % coverage; only rows every setting forecast count.

    OMP_NUM_THREADS=1 .venv/bin/python bench/forecast_auto_settings.py [--datasets a,b] [--cutoffs 40]
        [--max-series 12] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import forecast_accuracy as accuracy

from forecasting import DEFAULT_QUANTILES
from forecasting.metrics import coverage, crps_from_quantiles
from forecasting.types import quantile_columns

SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "auto": ("auto", {}),
    "auto_fixed": ("auto", {"online_weights": False}),
    "auto_ev1": ("auto", {"online_evidence": 1.0}),
    "auto_one_set": ("auto", {"short_horizon_steps": 0}),
    "auto_ev4": ("auto", {"online_evidence": 4.0}),
    "auto_long": ("auto", {"validation_points": 144}),
    "auto_before": ("auto", {"series_weight_share": 1.0, "calibration_strength": 1.0}),
    "auto_pooled": ("auto", {"series_weight_share": 0.0}),
    "auto_uncalibrated": ("auto", {"calibrate": False}),
    "lightgbm": ("lightgbm", {}),
}
console = Console(width=150)


def walk(model_name: str, settings: dict[str, Any], ds: accuracy.Dataset, cuts: np.ndarray) -> pd.DataFrame:
    """The accuracy bench's walk: fit on the training part, update and forecast at every cutoff."""
    train, test, _ = accuracy.cutoffs_of(ds, len(cuts))
    return accuracy.run_ours(model_name, ds, train, test, cuts, settings)


def scores(test: pd.DataFrame, forecasts: dict[str, pd.DataFrame]) -> dict[str, dict[str, dict[str, float]]]:
    key = ["series", "cutoff", "horizon"]
    common = None
    for f in forecasts.values():
        k = f[key].drop_duplicates()
        common = k if common is None else common.merge(k, on=key)
    actual = test.rename(columns={"series_id": "series", "ts": "timestamp", "value": "y"})
    qcols = quantile_columns(DEFAULT_QUANTILES)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, f in forecasts.items():
        rows = f.merge(common, on=key).merge(actual[["series", "timestamp", "y"]], on=["series", "timestamp"])
        out[name] = {}
        for label, r in (
            ("1", rows[rows["horizon"] == 1]),
            ("12", rows[rows["horizon"] == 12]),
            ("all", rows),
        ):
            y, q = r["y"].to_numpy(float), r[qcols].to_numpy(float)
            out[name][label] = {
                "crps": crps_from_quantiles(y, q, DEFAULT_QUANTILES),
                "mae": float(np.mean(np.abs(y - r["q0.5"].to_numpy(float)))),
                "mse": float(np.mean((y - r["mean"].to_numpy(float)) ** 2)),
                "cov80": coverage(y, q, DEFAULT_QUANTILES, 0.8),
                "n": float(len(y)),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default=",".join(accuracy.LOADERS))
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--cutoffs", type=int, default=40)
    parser.add_argument("--max-series", type=int, default=12)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    names = args.settings.split(",")
    results: dict[str, Any] = {}
    with Progress(console=console) as progress:
        task = progress.add_task("settings x datasets", total=len(names) * len(args.datasets.split(",")))
        for dname in args.datasets.split(","):
            ds = accuracy.load(dname, args.max_series)
            _, test, cuts = accuracy.cutoffs_of(ds, args.cutoffs)
            forecasts = {}
            for name in names:
                model_name, settings = SETTINGS[name]
                forecasts[name] = walk(model_name, settings, ds, cuts)
                progress.advance(task)
            results[dname] = scores(test, forecasts)
    heads = [f"{m} {h}" for h in ("h1", "h12", "all") for m in ("CRPS", "cov80")]
    table = Table("dataset", "setting", *heads, "MAE all", "MSE all", title="auto's settings (scaled units)")
    for dname, by_name in results.items():
        for name, s in by_name.items():
            cells = [f"{s[h][m]:.4f}" if m == "crps" else f"{s[h][m]:.2f}" for h in ("1", "12", "all")
                     for m in ("crps", "cov80")]  # fmt: skip
            table.add_row(dname, name, *cells, f"{s['all']['mae']:.4f}", f"{s['all']['mse']:.5f}")
    overall = {n: float(np.mean([results[d][n]["all"]["crps"] for d in results])) for n in names}
    console.print(table)
    console.print("overall CRPS (all steps, mean over datasets): "
                  + ", ".join(f"{n} {v:.4f}" for n, v in overall.items()))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"results": results, "overall_crps_all": overall}, indent=1))


if __name__ == "__main__":
    main()
