"""Forecast accuracy on every public trace in ../shared/data that reads as series, our models against peers
measured in the same run: statsforecast AutoETS, AutoTheta and SeasonalNaive, mlforecast's LightGBM.

Protocol, the same for every model and dataset: each series is min-max scaled on its training part (the
first 80 % of its timestamps), so errors are comparable across datasets; models are fitted once on the
training part, then walk through the test part (the last 20 %) without refit, forecasting 12 steps at
every `step`-th test timestamp (at most `--cutoffs` per dataset) from exactly the data up to it. Scores
at horizon 1 and horizon 12 (the forecast's first and twelfth step): MSE of the mean, MAE of the median,
CRPS from the quantiles, 50/80/95 % coverage, fit+predict seconds. Only rows every model forecast count.
"overall" is the mean over datasets of each (already scaled) score. `--json` is rewritten after every
dataset, and each dataset's entry keeps the commit its code was loaded from and when its run started;
`--report` lists them and warns when merged scores come from more than one version or an unclean tree.

Datasets (see each folder's README):
  nab_cpu          NAB CloudWatch EC2/RDS CPU, 5 min                             (development)
  nab_network_io   NAB CloudWatch network, disk, ELB requests, ASG, 5 min       (development)
  azure_vm_noise   Azure VM benchmark noise, hourly means, last 60 days         (development)
  nab_tweets       NAB Twitter mention volumes (request-like load), 5 min       (held out)
  nab_known_cause  NAB known-cause failures (ASG CPU, EC2 latency, temperature)  (held out)
  alibaba_pai      Alibaba PAI per-worker mini-batch times, one step per iteration (held out)
  azure_llm        Azure LLM code-completion minute counts (requests, tokens)    (held out)
  power            semi-synthetic GPU-server power (forecasting.power_data)      (held out)

    .venv/bin/python bench/forecast_accuracy.py [--models a,b] [--datasets x,y] [--cutoffs 40]
        [--json out.json] [--figure docs/forecast-results.png]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from forecasting import DEFAULT_MODEL, DEFAULT_QUANTILES, create_forecaster  # noqa: E402
from forecasting.data import split_by_time  # noqa: E402
from forecasting.metrics import coverage, crps_from_quantiles  # noqa: E402
from forecasting.types import make_forecast_frame, quantile_columns  # noqa: E402

# ../shared/data next to the checkout (a worktree sits one level deeper)
_CANDIDATES = [p / "shared" / "data" for p in (ROOT.parent, ROOT.parent.parent)]
DATA = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
HORIZON = 12
SCORED = (1, 12)
OURS = ("auto", "lightgbm", "lightgbm_aci", "seasonal_window", "seasonal_naive")
PEERS = ("sf_autoets", "sf_autotheta", "sf_seasonal_naive", "mlf_lightgbm")
LEVELS = (50, 80, 90, 98)  # central intervals whose ends are our default quantile levels
HELD_OUT = ("nab_tweets", "nab_known_cause", "alibaba_pai", "azure_llm", "power")
console = Console(width=150)


@dataclass
class Dataset:
    name: str
    frame: pd.DataFrame  # long: series_id, ts, value, metric (min-max scaled on the training part)
    freq: pd.Timedelta
    season: int  # for the peers (1: none)


# ---- datasets ---------------------------------------------------------------------------------------------
def _nab(folder: str, prefixes: tuple[str, ...] | None = None) -> pd.DataFrame:
    files = sorted((DATA / "nab_cloud" / folder).glob("*.csv"))
    if prefixes is not None:
        files = [p for p in files if p.name.startswith(prefixes)]
    parts = []
    for path in files:
        raw = pd.read_csv(path)
        ts = pd.to_datetime(raw["timestamp"], utc=True)
        s = pd.Series(raw["value"].astype(float).to_numpy(), index=ts).groupby(level=0).mean()
        s = s.resample("5min").mean()  # a few NAB files have irregular stamps: one 5-minute grid
        parts.append(pd.DataFrame({"series_id": path.stem, "ts": s.index, "value": s.to_numpy()}).dropna())
    return pd.concat(parts, ignore_index=True)


def nab_cpu() -> tuple[pd.DataFrame, str, int]:
    return _nab("realAWSCloudwatch", ("ec2_cpu", "rds_cpu")), "5min", 288


def nab_network_io() -> tuple[pd.DataFrame, str, int]:
    prefixes = ("ec2_network_in", "iio_", "ec2_disk_write", "elb_request", "grok_asg")
    return _nab("realAWSCloudwatch", prefixes), "5min", 288


def nab_tweets() -> tuple[pd.DataFrame, str, int]:
    return _nab("realTweets"), "5min", 288


def nab_known_cause() -> tuple[pd.DataFrame, str, int]:
    return _nab("realKnownCause"), "5min", 288


def azure_vm_noise() -> tuple[pd.DataFrame, str, int]:
    parts = []
    for path in sorted((DATA / "azure_vm_noise_2024").glob("*/long_*.csv")):
        raw = pd.read_csv(path)
        raw["ts"] = pd.to_datetime(raw["starttime"], format="mixed", utc=True)
        for vm, g in raw.groupby("VM_id"):
            hourly = g.set_index("ts")["value"].resample("1h").mean()
            hourly = hourly[hourly.index > hourly.index.max() - pd.Timedelta(days=60)]
            if hourly.notna().mean() < 0.5:  # too sparse to forecast hour by hour
                continue
            sid = f"{path.parent.name}/{path.stem.split('_')[1]}/vm{vm}"
            parts.append(
                pd.DataFrame({"series_id": sid, "ts": hourly.index, "value": hourly.to_numpy()}).dropna()
            )
    return pd.concat(parts, ignore_index=True), "1h", 24


def alibaba_pai() -> tuple[pd.DataFrame, str, int]:
    # iterations have no wall clock: one grid step per iteration, at a step (13 s) with no whole number of
    # steps per day or week, so no model assumes a calendar cycle that is not there
    parts = []
    start = pd.Timestamp("2020-01-01", tz="UTC")
    for path in sorted((DATA / "alibaba_pai_minibatch_stragglers").glob("job_*_norm.csv")):
        raw = pd.read_csv(path)
        for worker, g in raw.groupby("worker"):
            g = g.groupby("time")["batch_time_norm"].mean().sort_index()
            step = pd.Series(g.index).rank(method="dense").to_numpy(int) - 1  # logged iterations: 1 step each
            ts = start + pd.to_timedelta(step * 13, unit="s")
            parts.append(
                pd.DataFrame({"series_id": f"{path.stem}/w{worker}", "ts": ts, "value": g.to_numpy()})
            )
    return pd.concat(parts, ignore_index=True), "13s", 1


def azure_llm() -> tuple[pd.DataFrame, str, int]:
    raw = pd.read_csv(DATA / "azure_llm_inference_2023" / "AzureLLMInferenceTrace_code.csv")
    minute = pd.to_datetime(raw["TIMESTAMP"], format="mixed", utc=True).dt.floor("1min")
    agg = raw.assign(minute=minute).groupby("minute").agg(
        requests=("ContextTokens", "size"), prompt_tokens=("ContextTokens", "sum"),
        output_tokens=("GeneratedTokens", "sum"),
    )  # fmt: skip
    grid = pd.date_range(agg.index.min(), agg.index.max(), freq="1min")
    agg = agg.reindex(grid, fill_value=0)  # a minute without requests is zero load, not a missing value
    long = agg.rename_axis("ts").reset_index().melt(id_vars="ts", var_name="series_id", value_name="value")
    return long, "1min", 1


def power() -> tuple[pd.DataFrame, str, int]:
    from forecasting.power_data import generate_from

    frame, _ = generate_from(DATA)
    frame = frame.rename(columns={"timestamp": "ts"}) if "timestamp" in frame else frame
    frame = frame[["series_id", "ts", "value"]]
    freq = pd.Series(frame["ts"].sort_values().unique()).diff().mode().iloc[0]
    return frame, freq, 1


LOADERS: dict[str, Callable[[], tuple[pd.DataFrame, object, int]]] = {
    "nab_cpu": nab_cpu, "nab_network_io": nab_network_io, "azure_vm_noise": azure_vm_noise,
    "nab_tweets": nab_tweets, "nab_known_cause": nab_known_cause, "alibaba_pai": alibaba_pai,
    "azure_llm": azure_llm, "power": power,
}  # fmt: skip


def test_fraction(frame: pd.DataFrame) -> float:
    """20 %, or more when 20 % would not hold a few 12-step forecasts (at most half)."""
    shortest = int(frame.groupby("series_id")["ts"].nunique().min())
    return float(min(0.5, max(0.2, (HORIZON + 20) / shortest)))


def load(name: str, max_series: int | None = None) -> Dataset:
    """The dataset, each series min-max scaled on its own training part (the first 80 %); at most
    `max_series` series, evenly spaced in name order (a cost bound, not a choice by score)."""
    frame, freq, season = LOADERS[name]()
    frame = frame.assign(metric="value", series_id=frame["series_id"].astype(str))
    names = np.array(sorted(frame["series_id"].unique()))
    if max_series is not None and len(names) > max_series:
        keep = names[np.linspace(0, len(names) - 1, max_series).round().astype(int)]
        frame = frame[frame["series_id"].isin(set(keep))]
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame = frame.sort_values(["series_id", "ts"], ignore_index=True)
    train, _ = split_by_time(frame, test_fraction(frame))
    lo = train.groupby("series_id")["value"].min()
    span = (train.groupby("series_id")["value"].max() - lo).replace(0.0, 1.0)
    frame["value"] = (frame["value"] - frame["series_id"].map(lo)) / frame["series_id"].map(span)
    return Dataset(name, frame, pd.Timedelta(freq), season)


# ---- running models ---------------------------------------------------------------------------------------
def cutoffs_of(ds: Dataset, n_cutoffs: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    train, test = split_by_time(ds.frame, test_fraction(ds.frame))
    stamps = np.unique(test["ts"].to_numpy())
    stamps = stamps[: max(1, len(stamps) - HORIZON)]  # cutoffs whose 12th step is still observed
    step = max(1, len(stamps) // n_cutoffs)
    return train, test, stamps[::step][:n_cutoffs]


def run_ours(
    name: str,
    ds: Dataset,
    train: pd.DataFrame,
    test: pd.DataFrame,
    cuts: np.ndarray,
    settings: dict[str, object] | None = None,
) -> pd.DataFrame:
    """Fit `name` (with `settings`) on the training part, then update and forecast at every cutoff."""
    config: dict[str, object] = {"freq": ds.freq, **(settings or {})}
    probe = create_forecaster(name).get_params()
    if "horizon" in probe:
        config["horizon"] = HORIZON
    if "max_horizon" in probe:
        config["max_horizon"] = HORIZON
    model = create_forecaster(name, **config).fit(train)
    ts = test["ts"].to_numpy()
    parts, prev = [], None
    for c in cuts:
        mask = (ts <= c) if prev is None else (ts > prev) & (ts <= c)
        if mask.any():
            model.update(test.loc[mask])
        prev = c
        f = model.predict(HORIZON)
        parts.append(f.loc[f["cutoff"] == c])
    return pd.concat(parts, ignore_index=True)


def _grid(series: pd.DataFrame, freq: pd.Timedelta) -> pd.Series:
    s = series.set_index("ts")["value"].sort_index()
    return s.reindex(pd.date_range(s.index.min(), s.index.max(), freq=freq)).ffill()


def _frame_from(
    sid: str, cutoff: pd.Timestamp, freq: pd.Timedelta, mean: np.ndarray, lo: dict, hi: dict
) -> pd.DataFrame:
    cols = [lo[lv] for lv in reversed(LEVELS)] + [mean] + [hi[lv] for lv in LEVELS]
    h = len(mean)
    return make_forecast_frame(
        series=[sid] * h, metric=["value"] * h, cutoff=[cutoff] * h,
        timestamp=cutoff + freq * np.arange(1, h + 1), horizon=np.arange(1, h + 1), mean=mean,
        quantiles=np.column_stack(cols), levels=DEFAULT_QUANTILES,
    )  # fmt: skip


def run_statsforecast(
    name: str, ds: Dataset, train: pd.DataFrame, test: pd.DataFrame, cuts: np.ndarray
) -> pd.DataFrame:
    """Fit once per series on the training part, then `forward` over the history up to every cutoff."""
    from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive

    # AutoETS with a 288-step season took ~48 s per series here (and picked a non-seasonal model on a
    # test series anyway), so for seasons above 24 the AutoETS peer is the non-seasonal one
    factory: Callable[[], Any] = {
        "sf_autoets": lambda: AutoETS(season_length=ds.season if ds.season <= 24 else 1),
        "sf_autotheta": lambda: AutoTheta(season_length=ds.season),
        "sf_seasonal_naive": lambda: SeasonalNaive(season_length=ds.season),
    }[name]
    parts = []
    full = pd.concat([train, test], ignore_index=True)
    for sid, g in full.groupby("series_id"):
        grid = _grid(g, ds.freq)
        y = grid.to_numpy(dtype=float)
        n_train = int((grid.index <= train.loc[train["series_id"] == sid, "ts"].max()).sum())
        own = set(test.loc[test["series_id"] == sid, "ts"].to_numpy())
        model = factory()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(y[:n_train])
            for c in cuts:
                if c not in own:
                    continue
                upto = int(grid.index.searchsorted(pd.Timestamp(c), side="right"))
                out = model.forward(y=y[:upto], h=HORIZON, level=list(LEVELS))
                lo = {lv: out[f"lo-{lv}"] for lv in LEVELS}
                hi = {lv: out[f"hi-{lv}"] for lv in LEVELS}
                parts.append(_frame_from(str(sid), pd.Timestamp(c), ds.freq, out["mean"], lo, hi))
    return pd.concat(parts, ignore_index=True)


def run_mlforecast(ds: Dataset, train: pd.DataFrame, test: pd.DataFrame, cuts: np.ndarray) -> pd.DataFrame:
    """mlforecast's LightGBM with its defaults, the lags a user would give it and conformal intervals."""
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.utils import PredictionIntervals

    lags = sorted({1, 2, 3, 6, 12, *([ds.season] if ds.season > 1 else [])})
    offset = pd.tseries.frequencies.to_offset(ds.freq)
    fcst = MLForecast(models={"lgb": lgb.LGBMRegressor(verbosity=-1)}, freq=offset, lags=lags)

    def gridded(frame: pd.DataFrame) -> pd.DataFrame:
        out = []
        for sid, g in frame.groupby("series_id"):
            s = _grid(g, ds.freq)
            out.append(pd.DataFrame({"unique_id": sid, "ds": s.index.tz_localize(None), "y": s.to_numpy()}))
        return pd.concat(out, ignore_index=True)

    fcst.fit(gridded(train), prediction_intervals=PredictionIntervals(n_windows=2, h=HORIZON))
    full = gridded(pd.concat([train, test], ignore_index=True))
    parts = []
    for c in cuts:
        cn = pd.Timestamp(c).tz_convert(None)
        hist = full[full["ds"] <= cn]
        pred = fcst.predict(HORIZON, new_df=hist, level=list(LEVELS))
        for sid, g in pred.groupby("unique_id"):
            if hist.loc[hist["unique_id"] == sid, "ds"].max() != cn:
                continue
            lo = {lv: g[f"lgb-lo-{lv}"].to_numpy() for lv in LEVELS}
            hi = {lv: g[f"lgb-hi-{lv}"].to_numpy() for lv in LEVELS}
            parts.append(_frame_from(str(sid), pd.Timestamp(c), ds.freq, g["lgb"].to_numpy(), lo, hi))
    return pd.concat(parts, ignore_index=True)


def run(name: str, ds: Dataset, train: pd.DataFrame, test: pd.DataFrame, cuts: np.ndarray) -> pd.DataFrame:
    if name == "mlf_lightgbm":
        return run_mlforecast(ds, train, test, cuts)
    if name.startswith("sf_"):
        return run_statsforecast(name, ds, train, test, cuts)
    return run_ours(name, ds, train, test, cuts)


# ---- scoring ----------------------------------------------------------------------------------------------
def score(test: pd.DataFrame, forecasts: dict[str, pd.DataFrame]) -> dict[str, dict[int, dict[str, float]]]:
    key = ["series", "cutoff", "horizon"]
    common = None
    for f in forecasts.values():
        k = f[key].drop_duplicates()
        common = k if common is None else common.merge(k, on=key)
    actual = test.rename(columns={"series_id": "series", "ts": "timestamp", "value": "y"})[
        ["series", "timestamp", "y"]
    ]
    out: dict[str, dict[int, dict[str, float]]] = {}
    qcols = quantile_columns(DEFAULT_QUANTILES)
    for name, f in forecasts.items():
        rows = f.merge(common, on=key).merge(actual, on=["series", "timestamp"])
        out[name] = {}
        for h in SCORED:
            r = rows[rows["horizon"] == h]
            y, q, mean = r["y"].to_numpy(float), r[qcols].to_numpy(float), r["mean"].to_numpy(float)
            if len(y) == 0:
                out[name][h] = {k: float("nan") for k in ("mse", "mae", "crps", "cov50", "cov80", "cov95")}
                out[name][h]["n"] = 0.0
                continue
            out[name][h] = {
                "mse": float(np.mean((y - mean) ** 2)),
                "mae": float(np.mean(np.abs(y - r["q0.5"].to_numpy(float)))),
                "crps": crps_from_quantiles(y, q, DEFAULT_QUANTILES),
                **{f"cov{int(c * 100)}": coverage(y, q, DEFAULT_QUANTILES, c) for c in (0.5, 0.8, 0.95)},
                "n": float(len(y)),
            }
    return out


def table(
    ds_name: str, title: str, scores: dict[str, dict[int, dict[str, float]]], seconds: dict[str, float]
) -> None:
    cols = ["model", *[f"{m} h{h}" for h in SCORED for m in ("MSE", "MAE", "CRPS", "cov80")], "cov50 h1",
            "cov95 h1", "s"]  # fmt: skip
    t = Table(*cols, title=f"{ds_name}: {title}")
    for name, by_h in sorted(scores.items(), key=lambda kv: kv[1][1]["crps"]):
        cells = [f"{by_h[h][m]:.4f}" if m != "cov80" else f"{by_h[h][m]:.3f}"
                 for h in SCORED for m in ("mse", "mae", "crps", "cov80")]  # fmt: skip
        label = f"{name} (default)" if name == DEFAULT_MODEL else name
        t.add_row(label, *cells, f"{by_h[1]['cov50']:.3f}", f"{by_h[1]['cov95']:.3f}", f"{seconds[name]:.1f}")
    console.print(t)


# ---- report -----------------------------------------------------------------------------------------------
METRICS = ("mse", "mae", "crps", "cov50", "cov80", "cov95")


def _get(results: dict, ds: str, model: str, h: int, metric: str) -> float:
    by_h = results[ds]["scores"].get(model, {})
    cell = by_h.get(str(h), by_h.get(h, {}))
    value = cell.get(metric, float("nan"))
    return float(value) if value is not None else float("nan")


def overall(results: dict, models: list[str]) -> tuple[dict[str, dict[int, dict[str, float]]], list[str]]:
    """Mean over the datasets every model was scored on, and the datasets left out."""
    full = [d for d in results if all(np.isfinite(_get(results, d, m, 1, "crps")) for m in models)]
    out = {
        m: {
            h: {k: float(np.mean([_get(results, d, m, h, k) for d in full])) for k in METRICS} for h in SCORED
        }
        for m in models
    }
    return out, [d for d in results if d not in full]


def _md_table(rows: dict[str, dict[int, dict[str, float]]], seconds: dict[str, float] | None) -> list[str]:
    head = "| model | " + " | ".join(f"{k} h{h}" for h in SCORED for k in ("MSE", "MAE", "CRPS", "cov80"))
    head += " | cov50 h1 | cov95 h1 | cov50 h12 | cov95 h12 |" + (" fit+predict s |" if seconds else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for m, by_h in sorted(rows.items(), key=lambda kv: kv[1][1]["crps"]):
        cells = [f"{by_h[h][k]:.4f}" if k != "cov80" else f"{by_h[h][k]:.3f}"
                 for h in SCORED for k in ("mse", "mae", "crps", "cov80")]  # fmt: skip
        cells += [f"{by_h[h][k]:.3f}" for h in SCORED for k in ("cov50", "cov95")]
        label = f"**{m}** (default)" if m == DEFAULT_MODEL else m
        extra = [f"{seconds.get(m, float('nan')):.1f}"] if seconds else []
        lines.append("| " + " | ".join([label, *cells, *extra]) + " |")
    return lines


def goals(results: dict, models: list[str]) -> list[str]:
    """The issue's goals, checked dataset by dataset and overall, as markdown bullet lines."""
    me = DEFAULT_MODEL
    lines = []
    agg, _ = overall(results, models)
    for k in ("crps", "mae"):
        for h in SCORED:
            best = min(agg[m][h][k] for m in models)
            gap = agg[me][h][k] / best - 1.0
            rank = 1 + sum(agg[m][h][k] < agg[me][h][k] for m in models)
            lines.append(f"- overall {k.upper()} h{h}: rank {rank} of {len(models)}, {gap:+.1%} vs best "
                         f"({'met' if gap <= 0.02 else 'MISSED'})")  # fmt: skip
    for d in results:
        parts = []
        for h in SCORED:
            mine = {k: _get(results, d, me, h, k) for k in METRICS}
            ets = _get(results, d, "sf_autoets", h, "mse")
            sn = min(_get(results, d, m, h, "crps") for m in ("sf_seasonal_naive", "seasonal_naive"))
            band = (0.77, 0.83) if h == 1 else (0.75, 0.85)
            parts.append(
                f"h{h}: MSE {'<' if mine['mse'] < ets else '>='} AutoETS ({mine['mse']:.4f} vs {ets:.4f}), "
                f"CRPS {'<=' if mine['crps'] <= sn else '>'} seasonal naive "
                f"({mine['crps']:.4f} vs {sn:.4f}), "
                f"cov80 {mine['cov80']:.3f} ({'in' if band[0] <= mine['cov80'] <= band[1] else 'OUTSIDE'} "
                f"{band[0]}-{band[1]})"
            )
        lines.append(f"- {d}: " + "; ".join(parts))
    return lines


def figure(results: dict, models: list[str], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    datasets = list(results)
    fig, axes = plt.subplots(1, len(SCORED), figsize=(7 * len(SCORED), 4.5), sharey=False)
    width = 0.8 / len(models)
    for ax, h in zip(np.atleast_1d(axes), SCORED, strict=True):
        for i, m in enumerate(models):
            vals = [_get(results, d, m, h, "crps") for d in datasets]
            ax.bar(np.arange(len(datasets)) + i * width, vals, width, label=m,
                   edgecolor="black" if m == DEFAULT_MODEL else None)  # fmt: skip
        ax.set_xticks(np.arange(len(datasets)) + 0.4 - width / 2, datasets, rotation=35, ha="right")
        ax.set_title(f"CRPS at horizon {h} (min-max scaled on training; lower is better)")
        ax.set_yscale("log")
    np.atleast_1d(axes)[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


CODE = ("forecasting", "bench/*.py", "pyproject.toml")  # what a run's scores depend on (not bench/results)


def provenance() -> dict[str, str]:
    """The commit the code was loaded from (`+dirty` with uncommitted changes to `CODE`) and when a run
    started: kept with every dataset's scores, because the JSON is rewritten after each dataset and a
    report merged while a run is still going would otherwise mix old and new scores without saying so."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD") + (
            "+dirty" if git("status", "--porcelain", "-uno", "--", *CODE) else ""
        )
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"commit": commit, "started": datetime.now(UTC).isoformat(timespec="seconds")}


def provenance_lines(results: dict) -> list[str]:
    """Which commit and run each dataset's scores come from; a warning when they are not all one commit."""
    runs = {
        d: res.get("provenance", {"commit": "not recorded", "started": "?"}) for d, res in results.items()
    }
    lines = [f"- {d}: commit {p['commit']}, run started {p['started']}" for d, p in runs.items()]
    commits = sorted({p["commit"] for p in runs.values()})
    if len(commits) > 1:
        lines.append(
            f"- **Warning:** these scores come from {len(commits)} versions of the code: {', '.join(commits)}"
        )
    unclean = [c for c in commits if c.endswith("+dirty") or c in ("unknown", "not recorded")]
    if unclean:
        lines.append(f"- **Warning:** not reproducible from a commit: {', '.join(unclean)}")
    return lines


def write_report(results: dict, md: Path, command: str) -> None:
    models = sorted({m for d in results.values() for m in d["scores"]})
    agg, left_out = overall(results, models)
    png = md.with_suffix(".png")
    drawn = figure(results, models, png)
    out = [
        "# Forecast accuracy: the default (`auto`) against its members and peers",
        "",
        "Generated by `bench/forecast_accuracy.py` (protocol in its docstring): every series min-max scaled "
        "on its training part (first 80 % of its time steps, more for very short datasets), one fit, then "
        "12-step forecasts from cutoffs through the test part without refit; scores at horizon 1 and 12. "
        "Peers ran in the same process on the same cutoffs. Datasets marked *held out* were not looked at "
        "while `auto` was designed (no design change was made after the development datasets either).",
        "",
        "```",
        command,
        "```",
        "",
        "Measured on:",
        "",
        *provenance_lines(results),
        "",
        "## Goals",
        "",
        *goals(results, models),
        "",
        f"## Overall (mean of scaled scores over {len(results) - len(left_out)} datasets"
        + (f"; left out where a model failed: {', '.join(left_out)}" if left_out else "")
        + ")",
        "",
        *_md_table(agg, None),
        "",
    ]
    if drawn:
        out += [f"![CRPS per dataset]({png.name})", ""]
    for d, res in results.items():
        rows = {
            m: {h: {k: _get(results, d, m, h, k) for k in METRICS} for h in SCORED} for m in res["scores"]
        }
        out += [f"## {d}", "", res["title"], "", *_md_table(rows, res["seconds"]), ""]
        for m, err in res.get("errors", {}).items():
            out.append(f"- {m} failed: {err}")
        out.append("")
    md.write_text("\n".join(out))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join([*OURS, *PEERS]))
    parser.add_argument("--datasets", default=",".join(LOADERS))
    parser.add_argument("--cutoffs", type=int, default=40, help="Forecast origins per dataset")
    parser.add_argument("--json", type=Path, help="Write all scores here")
    parser.add_argument("--max-series", type=int, default=None, help="At most this many series per dataset")
    parser.add_argument("--report", type=Path, help="Only write this markdown report (and .png) from --merge")
    parser.add_argument("--merge", type=Path, nargs="*", default=[], help="JSON files of earlier runs")
    parser.add_argument("--command", default="", help="The command(s) that produced the JSON, for the report")
    args = parser.parse_args()
    if args.report:
        merged: dict[str, object] = {}
        for path in args.merge:
            merged.update(json.loads(path.read_text()))
        write_report(merged, args.report, args.command)
        return
    measured_on = provenance()  # the code is loaded now: later edits do not change this run
    results: dict[str, object] = {}
    if args.json and args.json.exists():
        results = json.loads(args.json.read_text())  # datasets run earlier stay in the file
    for ds_name in args.datasets.split(","):
        ds = load(ds_name, args.max_series)
        train, test, cuts = cutoffs_of(ds, args.cutoffs)
        forecasts, seconds, errors = {}, {}, {}
        for name in args.models.split(","):
            start = time.perf_counter()
            try:
                forecasts[name] = run(name, ds, train, test, cuts)
            except Exception as exc:  # a model that cannot handle a dataset is a row, not a crash
                errors[name] = f"{type(exc).__name__}: {str(exc)[:200]}"
                console.print(f"[red]{ds_name}: {name} failed: {errors[name]}[/red]")
                continue
            seconds[name] = time.perf_counter() - start
        scores = score(test, forecasts)
        n_series = ds.frame["series_id"].nunique()
        title = (f"{n_series} series, {len(ds.frame):,} points, freq {ds.freq}, {len(cuts)} cutoffs"
                 f"{' (held out)' if ds_name in HELD_OUT else ''}")  # fmt: skip
        table(ds_name, title, scores, seconds)
        results[ds_name] = {
            "title": title, "scores": scores, "seconds": seconds, "errors": errors, "provenance": measured_on,
        }  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
