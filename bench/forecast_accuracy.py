"""Forecast accuracy on real traces: every registered model against statsforecast's AutoETS and seasonal
naive, one table per dataset (wQL, CRPS, 80%/95% coverage, MASE, fit+predict seconds).

Datasets (all under ../shared/data, see each folder's README):
  nab_cpu         NAB CloudWatch EC2/RDS CPU utilisation, 10 series at 5 min (14 days), horizon 12 (1 h)
  nab_network_io  NAB CloudWatch network-in, disk-write bytes and ELB request counts, horizon 12
  azure_llm_code  Azure LLM code-completion trace, per-minute requests / prompt / output tokens, horizon 5
  azure_vm_noise  Azure VM benchmark noise (long-lived D8s_v5 VMs), hourly means, last 60 days, horizon 6

Every model sees the same rolling-origin backtest (`forecasting.backtest`: fit once before the last 20% of
each series, then update state and forecast at every `--step`-th test timestamp, no refit). The reference
models run the same cutoffs: fitted once per series, then `forward` over the history up to each cutoff
(gaps forward-filled), with their prediction intervals (50/80/90/98%) as our quantile levels. All models
are scored on the rows every model forecast.

    .venv/bin/python bench/forecast_accuracy.py [--models a,b] [--datasets x,y] [--step 3] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from forecasting import DEFAULT_MODEL, DEFAULT_QUANTILES, available_models, create_forecaster  # noqa: E402
from forecasting.backtest import backtest, evaluate  # noqa: E402
from forecasting.data import split_by_time  # noqa: E402
from forecasting.types import make_forecast_frame  # noqa: E402
from service.forecasts.cli import ProgressForecaster  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
# Left out unless named in --models: deep models (minutes per dataset on CPU) and domain models (power,
# interference) that wrap the default for their own data.
SKIP_BY_DEFAULT = {"tft", "deepar", "power", "interference"}
REFS = ("sf_autoets", "sf_seasonal_naive")
LEVELS = (50, 80, 90, 98)  # central intervals whose ends are our default quantile levels
console = Console(width=None if sys.stdout.isatty() else 130)


@dataclass
class Dataset:
    name: str
    frame: pd.DataFrame  # long: series_id, ts, value[, metric]
    freq: pd.Timedelta
    horizon: int
    season: int  # for the reference models and MASE


# ---- datasets ---------------------------------------------------------------------------------------------
def _nab(prefixes: tuple[str, ...], quick: bool) -> pd.DataFrame:
    files = sorted(
        p for p in (DATA / "nab_cloud" / "realAWSCloudwatch").glob("*.csv") if p.name.startswith(prefixes)
    )
    if quick:
        files = files[:3]
    parts = []
    for path in files:
        raw = pd.read_csv(path)
        raw = raw.tail(1500) if quick else raw
        parts.append(pd.DataFrame({"series_id": path.stem, "ts": pd.to_datetime(raw["timestamp"], utc=True),
                                   "value": raw["value"].astype(float)}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def nab_cpu(quick: bool) -> Dataset:
    frame = _nab(("ec2_cpu", "rds_cpu"), quick)
    return Dataset("nab_cpu", frame, pd.Timedelta("5min"), 12, 288)


def nab_network_io(quick: bool) -> Dataset:
    frame = _nab(("ec2_network_in", "iio_", "ec2_disk_write", "elb_request"), quick)
    return Dataset("nab_network_io", frame, pd.Timedelta("5min"), 12, 288)


def azure_llm_code(quick: bool) -> Dataset:
    raw = pd.read_csv(DATA / "azure_llm_inference_2023" / "AzureLLMInferenceTrace_code.csv")
    minute = pd.to_datetime(raw["TIMESTAMP"], format="mixed", utc=True).dt.floor("1min")
    agg = raw.assign(minute=minute).groupby("minute").agg(
        requests=("ContextTokens", "size"), prompt_tokens=("ContextTokens", "sum"),
        output_tokens=("GeneratedTokens", "sum"),
    )  # fmt: skip
    grid = pd.date_range(agg.index.min(), agg.index.max(), freq="1min")
    agg = agg.reindex(grid, fill_value=0)  # a minute without requests is zero load, not a missing value
    long = agg.rename_axis("ts").reset_index().melt(id_vars="ts", var_name="metric", value_name="value")
    return Dataset("azure_llm_code", long.assign(series_id="code"), pd.Timedelta("1min"), 5, 1)


def azure_vm_noise(quick: bool) -> Dataset:
    parts = []
    for path in sorted((DATA / "azure_vm_noise_2024").glob("*/long_*.csv")):
        raw = pd.read_csv(path)
        raw["ts"] = pd.to_datetime(raw["starttime"], format="mixed", utc=True)
        for vm, g in raw.groupby("VM_id"):
            hourly = g.set_index("ts")["value"].resample("1h").mean()
            hourly = hourly[hourly.index > hourly.index.max() - pd.Timedelta(days=60)]
            if hourly.notna().mean() < 0.5:  # too sparse to forecast hour by hour
                continue
            region = path.stem.split("_")[1]
            sid = f"{path.parent.name}/{region}/vm{vm}"
            parts.append(
                pd.DataFrame({"series_id": sid, "ts": hourly.index, "value": hourly.to_numpy()}).dropna()
            )
    frame = pd.concat(parts, ignore_index=True)
    if quick:
        frame = frame[frame["series_id"].isin(sorted(frame["series_id"].unique())[::4])]
    return Dataset("azure_vm_noise", frame, pd.Timedelta("1h"), 6, 24)


DATASETS: dict[str, Callable[[bool], Dataset]] = {
    "nab_cpu": nab_cpu, "nab_network_io": nab_network_io, "azure_llm_code": azure_llm_code,
    "azure_vm_noise": azure_vm_noise,
}  # fmt: skip


# ---- reference models (statsforecast) ---------------------------------------------------------------------
def reference_backtest(name: str, ds: Dataset, step: int, progress: Progress) -> pd.DataFrame:
    """Fit once per series on the training part, then forecast from the history up to every cutoff."""
    from statsforecast.models import AutoETS, SeasonalNaive

    frame = ds.frame if "metric" in ds.frame.columns else ds.frame.assign(metric="value")
    _, test = split_by_time(frame, 0.2)
    cutoffs_all = np.unique(test["ts"].to_numpy())[::step]
    keys = list(frame.groupby(["series_id", "metric"]).groups)
    task = progress.add_task(f"{ds.name}: {name}", total=len(keys))
    parts = []
    for sid, met in keys:
        s = (
            frame[(frame["series_id"] == sid) & (frame["metric"] == met)]
            .set_index("ts")["value"]
            .sort_index()
        )
        grid = s.reindex(pd.date_range(s.index.min(), s.index.max(), freq=ds.freq)).ffill()
        split = test.loc[test["series_id"] == sid, "ts"].min()
        own = cutoffs_all[np.isin(cutoffs_all, test.loc[test["series_id"] == sid, "ts"].unique())]
        y = grid.to_numpy(dtype=float)
        n_train = int((grid.index < split).sum())
        model = AutoETS(season_length=ds.season) if name == "sf_autoets" else SeasonalNaive(ds.season)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(y[:n_train])
            for c in own:
                upto = int(grid.index.searchsorted(pd.Timestamp(c), side="right"))
                out = model.forward(y=y[:upto], h=ds.horizon, level=list(LEVELS))
                parts.append(_to_frame(sid, met, pd.Timestamp(c), ds, out))
        progress.advance(task)
    return pd.concat(parts, ignore_index=True)


def _to_frame(
    sid: str, met: str, cutoff: pd.Timestamp, ds: Dataset, out: dict[str, np.ndarray]
) -> pd.DataFrame:
    h = ds.horizon
    cols = [out[f"lo-{lv}"] for lv in reversed(LEVELS)] + [out["mean"]] + [out[f"hi-{lv}"] for lv in LEVELS]
    return make_forecast_frame(
        series=[sid] * h, metric=[met] * h, cutoff=[cutoff] * h,
        timestamp=cutoff + ds.freq * np.arange(1, h + 1), horizon=np.arange(1, h + 1), mean=out["mean"],
        quantiles=np.column_stack(cols), levels=DEFAULT_QUANTILES,
    )  # fmt: skip


# ---- run ------------------------------------------------------------------------------------------------
def run_model(name: str, ds: Dataset, step: int, progress: Progress) -> pd.DataFrame:
    if name in REFS:
        return reference_backtest(name, ds, step, progress)
    probe = create_forecaster(name).get_params()
    config: dict[str, object] = {"freq": ds.freq}
    if "horizon" in probe:
        config["horizon"] = ds.horizon
    if "max_horizon" in probe and int(probe["max_horizon"]) < ds.horizon:  # type: ignore[call-overload]
        config["max_horizon"] = ds.horizon
    model = create_forecaster(name, **config)
    n_cutoffs = len(np.unique(split_by_time(ds.frame, 0.2)[1]["ts"].to_numpy())[::step])
    wrapped = ProgressForecaster(model, f"{ds.name}: {name}", progress, n_cutoffs)
    return backtest(wrapped, ds.frame, ds.horizon, test_fraction=0.2, step=step).forecasts


def score(ds: Dataset, forecasts: dict[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
    """Metrics of every model on the (series, metric, cutoff, timestamp) rows all models forecast."""
    key = ["series", "metric", "cutoff", "timestamp"]
    common = None
    for f in forecasts.values():
        k = f[key].drop_duplicates()
        common = k if common is None else common.merge(k, on=key)
    train, test = split_by_time(ds.frame, 0.2)
    out = {}
    for name, f in forecasts.items():
        rows = f.merge(common, on=key) if common is not None else f
        out[name], _ = evaluate(rows, test, train, DEFAULT_QUANTILES, ds.season)
    return out


def report(
    ds: Dataset,
    metrics: dict[str, dict[str, float]],
    seconds: dict[str, float],
    errors: dict[str, str],
    step: int,
) -> None:
    n_series = ds.frame.groupby(["series_id", *(["metric"] if "metric" in ds.frame else [])]).ngroups
    title = (f"{ds.name}: {n_series} series, {len(ds.frame):,} points, freq {ds.freq}, horizon {ds.horizon}, "
             f"season {ds.season}, cutoff step {step}")  # fmt: skip
    table = Table("model", "wQL", "CRPS", "cov80", "cov95", "MASE", "fit+predict s", title=title)
    for name, m in sorted(metrics.items(), key=lambda kv: kv[1].get("wql", np.inf)):
        label = f"{name} (default)" if name == DEFAULT_MODEL else name
        cells = [f"{m.get(k, np.nan):.4f}" for k in ("wql", "crps", "coverage_80", "coverage_95", "mase")]
        table.add_row(label, *cells, f"{seconds[name]:.1f}")
    for name, err in errors.items():
        table.add_row(name, f"[red]failed: {err[:80]}[/red]", "", "", "", "", "")
    console.print(table)
    d = metrics.get(DEFAULT_MODEL)
    if d is None:
        return
    lines = []
    for ref in REFS:
        if ref in metrics:
            gain = 1.0 - d["wql"] / metrics[ref]["wql"]
            lines.append(f"wQL {gain:+.0%} vs {ref}")
    ok80 = 0.77 <= d["coverage_80"] <= 0.83
    lines.append(f"coverage80 {d['coverage_80']:.3f} ({'in' if ok80 else 'outside'} 0.77-0.83), "
                 f"scored rows {int(d['n'])}, cutoffs {int(d['n_cutoffs'])}")  # fmt: skip
    console.print(f"{DEFAULT_MODEL}: " + "; ".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", help="Comma-separated registry names and/or " + ", ".join(REFS))
    parser.add_argument("--datasets", default=",".join(DATASETS), help="Comma-separated datasets")
    parser.add_argument("--step", type=int, default=None, help="Cutoff stride (default 3; --quick: 12)")
    parser.add_argument("--quick", action="store_true", help="Fewer, shorter series and a coarser stride")
    args = parser.parse_args()
    step = args.step or (12 if args.quick else 3)
    models = args.models.split(",") if args.models else [
        *(m for m in available_models() if m not in SKIP_BY_DEFAULT), *REFS
    ]  # fmt: skip
    unknown = [m for m in models if m not in available_models() and m not in REFS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; available: {', '.join([*available_models(), *REFS])}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    for ds_name in args.datasets.split(","):
        ds = DATASETS[ds_name](args.quick)
        n_test = len(np.unique(split_by_time(ds.frame, 0.2)[1]["ts"].to_numpy()))
        ds_step = max(1, min(step, n_test // 40))  # short datasets keep at least ~40 cutoffs
        forecasts, seconds, errors = {}, {}, {}
        with Progress(*columns, console=console, transient=True) as progress:
            for name in models:
                start = time.perf_counter()
                try:
                    forecasts[name] = run_model(name, ds, ds_step, progress)
                except Exception as exc:  # a model that cannot handle a dataset is a row, not a crash
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    continue
                seconds[name] = time.perf_counter() - start
        report(ds, score(ds, forecasts), seconds, errors, ds_step)


if __name__ == "__main__":
    main()
