"""Degradation (interference) forecasts on the Azure VM noise data, against persistence and a rolling median
measured in the same run, per VM benchmark, at horizons 1 and 12; CloudFormer's published MAE (7.8 %) is
the reference to beat.

Target, the same for every model: per (VM, benchmark), the hourly mean of the benchmark's runs, oriented so
that higher is better (pgbench latency inverted), and its degradation ratio `d = 1 - perf / baseline` with
the baseline the 95th percentile of that VM's benchmark over its training part (the first 80 % of its
hours), learned once by the shared `InterferenceForecaster` wrapper, so every model forecasts exactly the
same numbers. MAE is the mean |median forecast - realised d| over the scored hours, in percentage points
of d (a forecast of d = 0.10 when d = 0.07 is an error of 3 pp), which is CloudFormer's "MAE of the
degradation ratio in percent". Coverage is the share of realised d inside the forecast's 10-90 %
interval. Every model is fitted once on the training part, then walks through the last 20 % without refit
(update, then forecast 12 hours at every `--step`-th hour); horizon 1 and 12 are the first and twelfth
hour of those forecasts. Hours without a run are not scored.

Split: eastus VMs are the selection set (settings were chosen on them); westus2 VMs are validation,
looked at only after choosing (`--split validation`). Models:
  persistence       last observed d, residual quantiles (seasonal_naive, season 1)
  rolling_median    median of the last 24 hours, empirical quantiles of those 24 (the plain baseline)
  rm_spread         Foresight's rolling-median member: median of 24 h, per-step residual spread of 168 h
  lightgbm          LightGBM quantiles + split conformal on d, other probes as covariates
  choice            per series, persistence / rm_spread / lightgbm (always the fast, 40-tree one) by
                    validation CRPS over its last 168 training hours (what the service's loop trains)

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/interference_forecast.py --split selection \
        [--step 3] [--fast] [--json bench/results/interference_forecast_selection.json] \
        [--figure docs/interference.png]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from forecasting.backtest import backtest  # noqa: E402
from forecasting.interference import InterferenceForecaster  # noqa: E402
from forecasting.interference_data import (  # noqa: E402
    LOWER_IS_BETTER,
    RollingMedianBaseline,
    default_model_config,
    load_vm_noise,
)
from forecasting.metrics import coverage, crps_from_quantiles  # noqa: E402
from forecasting.seasonal_naive import SeasonalNaiveForecaster  # noqa: E402
from forecasting.types import quantile_columns, quantile_levels_of  # noqa: E402

_CANDIDATES = [p / "shared" / "data" / "azure_vm_noise_2024" for p in (ROOT.parent, ROOT.parent.parent)]
DATA = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
HORIZON = 12
SCORED = (1, 12)
SPLITS = {"selection": ("eastus",), "validation": ("westus2",)}
CLOUDFORMER_MAE_PCT = 7.8
MODELS = ("persistence", "rolling_median", "rm_spread", "lightgbm", "choice")


def make_models(fast: bool) -> dict[str, InterferenceForecaster]:
    """The compared models, all behind the same degradation transform (baseline, orientation)."""
    common: dict[str, Any] = {"lower_is_better": LOWER_IS_BETTER, "freq": "1h"}
    lgb = default_model_config(HORIZON, fast)
    return {
        "persistence": InterferenceForecaster(SeasonalNaiveForecaster(season_length=1), **common),
        "rolling_median": InterferenceForecaster(RollingMedianBaseline(window=24), **common),
        "rm_spread": InterferenceForecaster("rolling_median", **common),
        "lightgbm": InterferenceForecaster("lightgbm_conformal", base_config=lgb, **common),
        "choice": InterferenceForecaster("choice", base_config={"horizon": HORIZON}, **common),
    }


def scored_rows(model: InterferenceForecaster, frame: pd.DataFrame, step: int) -> pd.DataFrame:
    """Backtest forecasts joined with the realised degradation (`y`), horizons 1 and 12 only."""
    result = backtest(model, frame, HORIZON, test_fraction=0.2, step=step)
    actual = model.degradation(frame).rename(columns={"series_id": "series", "ts": "timestamp", "value": "y"})
    rows = result.forecasts.merge(actual, on=["series", "metric", "timestamp"])
    return rows.loc[rows["horizon"].isin(SCORED)]


def scores(rows: pd.DataFrame) -> dict[str, float]:
    levels = quantile_levels_of(rows)
    y = rows["y"].to_numpy(dtype=float)
    q = rows[quantile_columns(levels)].to_numpy(dtype=float)
    return {
        "mae_pct": 100.0 * float(np.mean(np.abs(rows["q0.5"].to_numpy(dtype=float) - y))),
        "coverage_80": coverage(y, q, levels, 0.8),
        "crps_pct": 100.0 * crps_from_quantiles(y, q, levels),
        "n": float(len(rows)),
    }


def run(split: str, step: int, fast: bool) -> dict[str, Any]:
    frame, _ = load_vm_noise(DATA, regions=SPLITS[split])
    out: dict[str, Any] = {"split": split, "regions": SPLITS[split], "step": step, "models": {}}
    keep: dict[str, pd.DataFrame] = {}
    for name, model in make_models(fast).items():
        started = time.process_time()
        keep[name] = scored_rows(model, frame, step)
        out["models"][name] = {"cpu_seconds": round(time.process_time() - started, 1)}
        if name == "choice":
            out["choice"] = model.describe()
    # only (series, metric, timestamp, horizon) every model forecast count
    key = ["series", "metric", "timestamp", "horizon"]
    common = None
    for rows in keep.values():
        k = rows[key].drop_duplicates()
        common = k if common is None else common.merge(k, on=key)
    assert common is not None
    for name, rows in keep.items():
        rows = rows.merge(common, on=key)
        table: dict[str, Any] = {}
        for h in SCORED:
            at = rows.loc[rows["horizon"] == h]
            table[f"h{h}"] = {"all": scores(at)}
            for metric, g in at.groupby("metric"):
                table[f"h{h}"][str(metric)] = scores(g)
        out["models"][name].update(table)
    return out


def markdown(result: dict[str, Any]) -> str:
    models = result["models"]
    benches = [k for k in models[MODELS[0]]["h1"] if k != "all"] + ["all"]
    lines = [
        f"split `{result['split']}` ({', '.join(result['regions'])}), cutoff every {result['step']} h",
        "",
        "| benchmark | h | " + " | ".join(f"{m} MAE pp / cov80" for m in MODELS) + " |",
        "|---|---|" + "---|" * len(MODELS),
    ]
    for bench in benches:
        for h in SCORED:
            cells = []
            best = min(models[m][f"h{h}"][bench]["mae_pct"] for m in MODELS)
            for m in MODELS:
                s = models[m][f"h{h}"][bench]
                mae = f"{s['mae_pct']:.2f}"
                cells.append(f"{'**' + mae + '**' if s['mae_pct'] == best else mae} / {s['coverage_80']:.2f}")
            lines.append(f"| {bench} | {h} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 2, figsize=(12, 3.6 * len(results)), squeeze=False)
    for row, result in zip(axes, results, strict=True):
        models = result["models"]
        benches = [k for k in models[MODELS[0]]["h1"] if k != "all"] + ["all"]
        for ax, h in zip(row, SCORED, strict=True):
            x = np.arange(len(benches))
            width = 0.8 / len(MODELS)
            for i, m in enumerate(MODELS):
                vals = [models[m][f"h{h}"][b]["mae_pct"] for b in benches]
                ax.bar(x + i * width, vals, width, label=m)
            ax.axhline(CLOUDFORMER_MAE_PCT, color="k", linestyle="--", linewidth=1, label="CloudFormer 7.8 %")
            ax.set_xticks(x + 0.4 - width / 2, [b.split("_")[0] for b in benches])
            ax.set_ylabel("MAE of d (pp)")
            ax.set_title(f"{result['split']} ({', '.join(result['regions'])}), horizon {h} h")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--split", choices=[*SPLITS, "both"], default="selection")
    parser.add_argument("--step", type=int, default=3)
    parser.add_argument("--fast", action="store_true", help="smaller LightGBM (40 trees, one thread)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--figure", type=Path)
    args = parser.parse_args(argv)
    splits = list(SPLITS) if args.split == "both" else [args.split]
    results = []
    for split in splits:
        result = run(split, args.step, args.fast)
        result["load_average"] = os.getloadavg()
        results.append(result)
        print(markdown(result))
        print("cpu seconds:", {m: result["models"][m]["cpu_seconds"] for m in MODELS})
        print("load average:", " ".join(f"{x:.2f}" for x in result["load_average"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if args.figure:
        figure(results, args.figure)


if __name__ == "__main__":
    main()
