"""Do the other indicators of the same entity help? The same forecaster with and without them, per dataset.

Issue 14 asks to use a workload's other indicators as covariates where they help (HARMONY's hierarchy:
load -> CPU/memory -> IO/network) and to *measure* whether they do. The LightGBM forecaster already reads
the recent values of the other metrics of the same entity (`covariates=True`, its default, which the
`auto` forecaster's LightGBM member inherits); this bench compares it with `covariates=False` on the
same cutoffs, `auto` with a single LightGBM member whose covariates are on or off, and the `auto` default,
which has both LightGBM members and lets validation weigh them per series.

Datasets (every entity has several indicators):
  azure_llm_10s   Azure LLM code trace (real) in 10-second bins: requests, prompt and output tokens of one
                  service - load and the work it brings
  alibaba_pai     Alibaba PAI jobs (real): each job an entity, its workers' mini-batch times its indicators
                  (co-scheduled workers share stragglers and slowdowns)
  leadlag         synthetic, documented below: load leads CPU by 2 steps, CPU leads IO by 3 steps, memory
                  follows load slowly - covariates carry real information (3 seeds)
  unrelated       synthetic control: the same marginal shapes, indicators independent of each other -
                  covariates carry none, so they must not hurt

Protocol: per (entity, metric) min-max scaled on the training part (first 80 % of time steps); one fit,
then 12-step forecasts from evenly spaced cutoffs through the test part with updates and no refit; MAE of
the median and CRPS at horizon 1 and 12, and the relative change of covariates on vs off (negative: they
help). Every target metric is forecast and scored.

    .venv/bin/python bench/forecast_covariates.py [--datasets a,b] [--cutoffs 24] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import track
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from forecast_accuracy import DATA, HORIZON, SCORED  # noqa: E402  (one home for the suite's set-up)

from forecasting import DEFAULT_QUANTILES, create_forecaster  # noqa: E402
from forecasting.auto import default_candidates  # noqa: E402
from forecasting.data import split_by_time  # noqa: E402
from forecasting.metrics import crps_from_quantiles  # noqa: E402
from forecasting.types import quantile_columns  # noqa: E402

console = Console(width=140)
Loader = Callable[[int], tuple[pd.DataFrame, str]]


# ---- datasets: long frames (series_id = entity, metric, ts, value) ----------------------------------------
def azure_llm_10s(seed: int) -> tuple[pd.DataFrame, str]:
    raw = pd.read_csv(DATA / "azure_llm_inference_2023" / "AzureLLMInferenceTrace_code.csv")
    stamp = pd.to_datetime(raw["TIMESTAMP"], format="mixed", utc=True).dt.floor("10s")
    agg = raw.assign(ts=stamp).groupby("ts").agg(
        requests=("ContextTokens", "size"), prompt_tokens=("ContextTokens", "sum"),
        output_tokens=("GeneratedTokens", "sum"),
    )  # fmt: skip
    agg = agg.reindex(pd.date_range(agg.index.min(), agg.index.max(), freq="10s"), fill_value=0)
    long = agg.rename_axis("ts").reset_index().melt(id_vars="ts", var_name="metric", value_name="value")
    return long.assign(series_id="llm-code"), "10s"


def alibaba_pai(seed: int) -> tuple[pd.DataFrame, str]:
    parts = []
    start = pd.Timestamp("2020-01-01", tz="UTC")
    for path in sorted((DATA / "alibaba_pai_minibatch_stragglers").glob("job_*_norm.csv")):
        raw = pd.read_csv(path)
        g = raw.groupby(["worker", "time"])["batch_time_norm"].mean().reset_index()
        step = g["time"].rank(method="dense").astype(int) - 1  # logged iterations, one grid step each
        g = g.assign(
            series_id=path.stem, metric="w" + g["worker"].astype(str),
            ts=start + pd.to_timedelta(step * 13, unit="s"),
        )  # fmt: skip
        parts.append(g.rename(columns={"batch_time_norm": "value"})[["series_id", "metric", "ts", "value"]])
    return pd.concat(parts, ignore_index=True), "13s"


def _synthetic(seed: int, related: bool) -> tuple[pd.DataFrame, str]:
    """8 entities x 2,000 five-minute steps. Load: daily cycle (level, amplitude, phase per entity) times
    AR(1) noise, with bursts. Related: cpu_t = 0.2 + 0.6 load_{t-2} + noise, io_t = 0.5 cpu_{t-3}^1.5 +
    noise, memory = exponential smoothing (0.02) of load + noise. Unrelated: each indicator built the same
    way from its own independent load path, so the marginals match and the cross-information is zero."""
    rng = np.random.default_rng(seed)
    n, day = 2000, 288
    t = np.arange(n)
    parts = []

    def load_path() -> np.ndarray:
        level, amp, phase = rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)
        ar = np.zeros(n)
        eps = rng.normal(0, 0.04, n)
        for i in range(1, n):
            ar[i] = 0.9 * ar[i - 1] + eps[i]
        bursts = (rng.random(n) < 0.01) * rng.uniform(0.2, 0.5, n)
        bursts = np.convolve(bursts, np.ones(6), mode="full")[:n]
        return np.clip(level + amp * np.sin(2 * np.pi * t / day + phase) + ar + bursts, 0.01, None)

    def lag(x: np.ndarray, k: int) -> np.ndarray:
        return np.concatenate([np.full(k, x[0]), x[:-k]])

    def smooth(x: np.ndarray, a: float) -> np.ndarray:
        out = np.empty_like(x)
        out[0] = x[0]
        for i in range(1, len(x)):
            out[i] = (1 - a) * out[i - 1] + a * x[i]
        return out

    for e in range(8):
        load = load_path()
        base = {"cpu": load if related else load_path(), "mem": load if related else load_path()}
        cpu = 0.2 + 0.6 * lag(base["cpu"], 2) + rng.normal(0, 0.02, n)
        io_src = cpu if related else 0.2 + 0.6 * lag(load_path(), 2)
        io = 0.5 * np.clip(lag(io_src, 3), 0, None) ** 1.5 + rng.normal(0, 0.02, n)
        mem = smooth(base["mem"], 0.02) + rng.normal(0, 0.01, n)
        ts = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")
        for metric, values in {"load": load, "cpu": cpu, "io": io, "memory": mem}.items():
            parts.append(pd.DataFrame({"series_id": f"e{e}", "metric": metric, "ts": ts, "value": values}))
    return pd.concat(parts, ignore_index=True), "5min"


LOADERS: dict[str, tuple[Loader, tuple[int, ...]]] = {
    "azure_llm_10s": (azure_llm_10s, (0,)),
    "alibaba_pai": (alibaba_pai, (0,)),
    "leadlag": (lambda s: _synthetic(s, related=True), (0, 1, 2)),
    "unrelated": (lambda s: _synthetic(s, related=False), (0, 1, 2)),
}


# ---- running and scoring ----------------------------------------------------------------------------------
def scaled(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = frame.assign(ts=pd.to_datetime(frame["ts"], utc=True)).sort_values(["series_id", "metric", "ts"])
    train, _ = split_by_time(frame, 0.2)
    key = ["series_id", "metric"]
    lo = train.groupby(key)["value"].min().rename("lo")
    span = (train.groupby(key)["value"].max() - lo).replace(0.0, 1.0).rename("span")
    out = frame.join(lo, on=key).join(span, on=key)
    out["value"] = (out["value"] - out["lo"]) / out["span"]
    out = out.drop(columns=["lo", "span"])
    return split_by_time(out.reset_index(drop=True), 0.2)


SINGLE_LIGHTGBM = [c for c in default_candidates(HORIZON) if c != "lightgbm_no_covariates"]
"""`auto`'s candidates with one LightGBM member, whose covariates the bench turns on or off."""
MODELS: dict[str, tuple[str, dict[str, object]]] = {
    "lightgbm +cov": ("lightgbm", {"covariates": True, "max_horizon": HORIZON, "num_threads": 1}),
    "lightgbm -cov": ("lightgbm", {"covariates": False, "max_horizon": HORIZON, "num_threads": 1}),
    # the default: both LightGBM members, weighed per series by validation
    "auto": ("auto", {"horizon": HORIZON}),
    "auto +cov": ("auto", {"horizon": HORIZON, "candidates": SINGLE_LIGHTGBM}),
    "auto -cov": (
        "auto",
        {
            "horizon": HORIZON,
            "candidates": SINGLE_LIGHTGBM,
            "candidate_config": {"lightgbm": {"covariates": False}},
        },
    ),
}


def forecasts(model: str, train: pd.DataFrame, test: pd.DataFrame, freq: str, n_cuts: int) -> pd.DataFrame:
    name, config = MODELS[model]
    fitted = create_forecaster(name, freq=freq, **config).fit(train)
    stamps = np.unique(test["ts"].to_numpy())[:-HORIZON]
    cuts = stamps[:: max(1, len(stamps) // n_cuts)][:n_cuts]
    ts = test["ts"].to_numpy()
    parts, prev = [], None
    for c in cuts:
        mask = (ts <= c) if prev is None else (ts > prev) & (ts <= c)
        if mask.any():
            fitted.update(test.loc[mask])
        prev = c
        f = fitted.predict(HORIZON)
        parts.append(f.loc[f["cutoff"] == c])
    return pd.concat(parts, ignore_index=True)


def score(test: pd.DataFrame, forecast: pd.DataFrame) -> dict[int, dict[str, float]]:
    actual = test.rename(columns={"series_id": "series", "ts": "timestamp", "value": "y"})
    on = ["series", "metric", "timestamp"]
    rows = forecast.merge(actual[[*on, "y"]], on=on)
    qcols = quantile_columns(DEFAULT_QUANTILES)
    out: dict[int, dict[str, float]] = {}
    for h in SCORED:
        r = rows[rows["horizon"] == h]
        y = r["y"].to_numpy(float)
        if len(y) == 0:
            raise SystemExit(f"no forecast at horizon {h} met an observation: check the dataset's time grid")
        out[h] = {
            "mae": float(np.mean(np.abs(y - r["q0.5"].to_numpy(float)))),
            "crps": crps_from_quantiles(y, r[qcols].to_numpy(float), DEFAULT_QUANTILES),
            "n": float(len(y)),
        }
    return out


def change(per_model: dict[str, dict[int, dict[str, float]]], h: int, model: str, metric: str) -> str:
    """Relative change of `metric` from covariates off to on (negative: the covariates help)."""
    on, off = per_model.get(f"{model} +cov"), per_model.get(f"{model} -cov")
    if on is None or off is None:
        return "-"
    return f"{on[h][metric] / off[h][metric] - 1:+.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default=",".join(LOADERS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--cutoffs", type=int, default=24)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    models = args.models.split(",")
    results: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    runs = [(d, s) for d in args.datasets.split(",") for s in LOADERS[d][1]]
    for dataset, seed in track(runs, description="datasets x seeds", console=console):
        frame, freq = LOADERS[dataset][0](seed)
        train, test = scaled(frame)
        label = dataset if len(LOADERS[dataset][1]) == 1 else f"{dataset}/seed{seed}"
        results[label] = {m: score(test, forecasts(m, train, test, freq, args.cutoffs)) for m in models}
    table = Table(title="covariates on vs off (scaled MAE of the median, CRPS; change < 0: covariates help)")
    for col in ["dataset", "h", *[f"{m} MAE" for m in models], "Δ MAE lgb", "Δ CRPS lgb", "Δ MAE auto"]:
        table.add_column(col)
    for label, per_model in results.items():
        for h in SCORED:
            table.add_row(
                label, str(h), *[f"{per_model[m][h]['mae']:.4f}" for m in models],
                change(per_model, h, "lightgbm", "mae"), change(per_model, h, "lightgbm", "crps"),
                change(per_model, h, "auto", "mae"),
            )  # fmt: skip
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
