"""The Azure VM noise data as interference telemetry, naive baselines, and the held-out evaluation.

Data (`../shared/data/azure_vm_noise_2024`, CC BY 4.0, Freischuetz et al., EuroSys 2025): the same four
benchmarks re-run for ~16 months on long-lived D8s_v5 VMs, each VM running the four in a random order
about every 85 minutes. What it offers, and what is a proxy:

* Real: each VM's own measured performance over time for four probes (stress-ng CPU cache ops/s, Intel
  MLC memory bandwidth MiB/s, Redis SET requests/s, pgbench read-write latency ms). The variation over
  time on one VM is what the host and its co-tenants do to it: the interference signal itself.
* Proxy for co-located telemetry: the other three probes of the same VM. We never see the noisy
  neighbours' own load; a probe of a shared resource (cache, memory bus, network, disk) stands in for
  contention on it.
* Proxy for neighbours: the other long-lived VMs of the same region (`groups`). They are not known to
  share a host, so their leave-one-out mean tracks fleet or platform-level drift, not co-tenancy.
* Not in the data: host CPU/memory utilisation, co-tenant identities, VM placement. `runtime` is the
  benchmark duration (nearly constant or a restatement of the value) and is not used.

Runs are binned onto an hourly grid (mean within a bin; ~30% of bins are empty, which the models see as
missing). `evaluate` fits on the first 80% of each VM's time, then walks forward through the last 20%
(update + predict, no refit) and scores the degradation forecasts against what happened, alongside the
naive baselines (last value, rolling median). Run it with::

    .venv/bin/python -m forecasting.interference_data --data-dir ../shared/data/azure_vm_noise_2024
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting.backtest import BacktestResult, backtest
from forecasting.base import Forecaster, PanelForecaster
from forecasting.data import row_quantiles
from forecasting.interference import InterferenceForecaster
from forecasting.interference_members import lightgbm_member_config
from forecasting.metrics import mae
from forecasting.seasonal_naive import SeasonalNaiveForecaster
from forecasting.types import DEFAULT_QUANTILES, InvalidConfigError, InvalidSeriesError, mean_from_quantiles

LOWER_IS_BETTER: tuple[str, ...] = ("pgbench_sf2500_c25_rw_latency_ms",)
"""Benchmarks of the VM noise data where lower is better (latency); the others are throughputs."""


def load_vm_noise(
    root: str | Path,
    *,
    regions: Sequence[str] | None = None,
    lifespan: str = "long",
    freq: str = "1h",
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Long frame (series_id = '<region>/vm<id>', metric = benchmark folder, ts, value) and VM -> region.

    Reads `<root>/<benchmark>/<lifespan>_<region>_D8s_v5.csv[.gz]`; runs are averaged per `freq` bin.
    """
    base = Path(root)
    parts = []
    for path in sorted(base.glob(f"*/{lifespan}_*_D8s_v5.csv*")):
        region = path.name.split("_")[1]
        if regions is not None and region not in regions:
            continue
        raw = pd.read_csv(path, usecols=["value", "starttime", "VM_id"])
        ts = pd.to_datetime(raw["starttime"], format="mixed", utc=True).dt.floor(freq)
        parts.append(
            pd.DataFrame(
                {
                    "series_id": region + "/vm" + raw["VM_id"].astype(str),
                    "metric": path.parent.name,
                    "ts": ts,
                    "value": raw["value"].astype(float),
                }
            )
        )
    if not parts:
        raise InvalidSeriesError(f"no {lifespan}_*_D8s_v5.csv files under {base}/<benchmark>/")
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.groupby(["series_id", "metric", "ts"], as_index=False, sort=True)["value"].mean()
    groups = {sid: sid.split("/")[0] for sid in frame["series_id"].unique()}
    return frame, groups


class RollingMedianBaseline(PanelForecaster):
    """Naive baseline: median (and empirical quantiles) of the last `window` observations, flat ahead.

    The reference the interference bench compares against. Not the `RollingMedianForecaster` member of
    `forecasting.interference_members`, whose intervals come from how far observations fell from the
    rolling median (per horizon step) rather than from the window's own spread."""

    name = "rolling_median"

    def __init__(
        self,
        *,
        window: int = 24,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target_metrics: Sequence[str] | None = None,
        freq: str | pd.Timedelta | None = None,
    ) -> None:
        super().__init__(quantiles=quantiles, target_metrics=target_metrics, freq=freq)
        if window < 1:
            raise InvalidConfigError(f"window must be >= 1, got {window}")
        self.window = window

    def history_needed(self) -> int:
        return self.window

    def _fit(self) -> None:
        pass

    def _predict(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        tails, _ = self._panel.tails(self._targets, self.window)
        q, _ = row_quantiles(tails, self.quantiles)
        q = np.where(np.isfinite(q), q, 0.0)
        q3 = np.repeat(q[:, None, :], horizon, axis=1)
        return mean_from_quantiles(q3, self.quantiles), q3


def default_model_config(horizon: int, fast: bool = False) -> dict[str, Any]:
    """Configuration of the evaluated interference model (LightGBM quantiles + split conformal)."""
    return lightgbm_member_config(horizon, fast)


def evaluate(
    frame: pd.DataFrame,
    groups: dict[str, str] | None,
    *,
    horizon: int = 3,
    test_fraction: float = 0.2,
    step: int = 1,
    fast: bool = False,
) -> dict[str, dict[str, float]]:
    """Backtest the interference model and the naive baselines on the same time split.

    Returns per model: MAE of the degradation ratio (median forecast), 50/80/95% interval coverage, wQL,
    CRPS, and MAE per benchmark (`mae:<metric>`).
    """
    common = {"lower_is_better": LOWER_IS_BETTER, "freq": "1h"}
    models: dict[str, Forecaster] = {
        "interference_lgbm": InterferenceForecaster(
            "lightgbm_conformal",
            base_config=default_model_config(horizon, fast),
            groups=groups,
            **common,  # type: ignore[arg-type]
        ),
        "naive_last": InterferenceForecaster(SeasonalNaiveForecaster(season_length=1), **common),  # type: ignore[arg-type]
        "rolling_median": InterferenceForecaster(RollingMedianBaseline(window=24), **common),  # type: ignore[arg-type]
    }
    out: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        result = _backtest_degradation(model, frame, horizon, test_fraction, step)
        out[name] = _scores(result)
    return out


def _backtest_degradation(
    model: Forecaster, frame: pd.DataFrame, horizon: int, test_fraction: float, step: int
) -> BacktestResult:
    """Backtest on raw performance, then re-score forecasts against realised degradation ratios."""
    result = backtest(model, frame, horizon, test_fraction=test_fraction, step=step)
    assert isinstance(model, InterferenceForecaster)
    actual = model.degradation(frame).rename(columns={"series_id": "series", "ts": "timestamp", "value": "y"})
    scored = result.forecasts.merge(actual, on=["series", "metric", "timestamp"])
    return BacktestResult(result.forecasts, {}, scored)


def _scores(result: BacktestResult) -> dict[str, float]:
    from forecasting.metrics import summarize
    from forecasting.types import quantile_columns, quantile_levels_of

    s = result.scored
    levels = quantile_levels_of(s[[c for c in s.columns if c.startswith("q")]])
    y = s["y"].to_numpy(dtype=float)
    q = s[quantile_columns(levels)].to_numpy(dtype=float)
    out = summarize(y, s["mean"].to_numpy(), q, levels)
    for met, g in s.groupby("metric"):
        out[f"mae:{met}"] = mae(g["y"], g["q0.5"])
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Print the held-out evaluation as JSON (MAE and coverage of the degradation ratio per model)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", default="../shared/data/azure_vm_noise_2024")
    parser.add_argument("--region", action="append", default=None)
    parser.add_argument("--horizon", type=int, default=3)
    parser.add_argument("--step", type=int, default=3)
    parser.add_argument("--fast", action="store_true")
    args = parser.parse_args(argv)
    frame, groups = load_vm_noise(args.data_dir, regions=args.region)
    result = evaluate(frame, groups, horizon=args.horizon, step=args.step, fast=args.fast)
    print(json.dumps({k: {m: round(v, 4) for m, v in r.items()} for k, r in result.items()}, indent=2))


if __name__ == "__main__":
    main()
