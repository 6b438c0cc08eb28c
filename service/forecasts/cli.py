"""`foresight forecast ...`: offline backtests and batch fitting on long CSV files, and the model list.

The backtest command is a contract other tools rely on: long CSV in (`series,timestamp,value[,metric]`),
a ForecastFrame CSV and a metrics JSON out, exit code 2 with a one-line reason for any bad input. All the
forecasting is done by the pure `forecasting` package; this module only reads files, reports progress
and writes results.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, Self

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forecasting import DEFAULT_MODEL, Forecaster, ForecastingError, available_models, create_forecaster
from forecasting import base as registry
from forecasting.backtest import backtest, evaluate
from forecasting.data import split_by_time, to_utc
from service.forecasts.batch import GroupTrainingError, train_many

forecast_app = typer.Typer(help="Forecast models: list, backtest, batch fit.", no_args_is_help=True)
console = Console(stderr=True)
REQUIRED = ("series", "timestamp", "value")
_ALL = "all"


class BadInput(Exception):
    """Input the user can fix (message says how); the CLI turns it into exit code 2."""


def fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


# ---- input --------------------------------------------------------------------------------------------
def read_long_csv(path: Path) -> pd.DataFrame:
    """Read and check a long CSV; returns columns series_id, ts (UTC), value[, metric, covariates...]."""
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise BadInput(f"cannot read {path} as CSV: {exc}") from exc
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise BadInput(
            f"{path.name} is missing column(s) {missing}; expected a long CSV with columns "
            f"series,timestamp,value and optionally metric (found {list(df.columns)})"
        )
    if df.empty:
        raise BadInput(f"{path.name} has a header but no rows")
    values = pd.to_numeric(df["value"], errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raw = df["value"].iloc[i]
        shown = "empty" if pd.isna(raw) else repr(str(raw))
        raise BadInput(
            f"{path.name} line {i + 2} (series {str(df['series'].iloc[i])!r}): value {shown} is "
            f"not a finite number ({int(bad.sum())} such row(s)); NaN/empty/inf values are not accepted — "
            "drop the row to mark a missing observation"
        )
    try:
        with warnings.catch_warnings():  # pandas warns when it falls back to per-element parsing
            warnings.simplefilter("ignore", UserWarning)
            ts = to_utc(df["timestamp"])
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadInput(f"{path.name}: column 'timestamp' must be epoch seconds or ISO 8601: {exc}") from exc
    if ts.isna().any():
        i = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise BadInput(f"{path.name} line {i + 2}: empty timestamp")
    out = df.rename(columns={"series": "series_id", "timestamp": "ts"})
    out["series_id"] = out["series_id"].astype(str)
    out["ts"], out["value"] = ts, values.astype(float)
    if "metric" in out.columns:
        out["metric"] = out["metric"].astype(str)
    return out


def select_target(frame: pd.DataFrame, target: str) -> list[str] | None:
    """Target metrics for the model (None = every metric) after checking `target` exists."""
    metrics = sorted(frame["metric"].unique()) if "metric" in frame.columns else ["value"]
    if target == _ALL:
        return None
    if target not in metrics:
        raise BadInput(
            f"--target-metric {target!r} is not in the input; its metrics are {metrics} (or 'all')"
        )
    return [target]


def check_history(frame: pd.DataFrame, test_fraction: float) -> None:
    """Every series needs training data before its test part (clear message instead of a model error)."""
    if not 0.0 < test_fraction < 1.0:
        raise BadInput(f"--test-fraction must be strictly between 0 and 1, got {test_fraction}")
    train, _ = split_by_time(frame, test_fraction)
    sizes = frame.groupby("series_id")["ts"].nunique()
    fitted = train.groupby("series_id")["ts"].nunique().reindex(sizes.index, fill_value=0)
    short = fitted[fitted < 2]
    if len(short):
        name = short.index[0]
        need = math.ceil(2 / (1.0 - test_fraction)) + 1
        raise BadInput(
            f"series {name!r} has {sizes[name]} timestamp(s): after holding out the last {test_fraction:g} "
            f"for testing, {fitted[name]} remain to fit on; give it at least {need} timestamps "
            "(models may need more; they say so)"
        )


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """`key=value` pairs; values are JSON when they parse as JSON, else strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--param {item!r} must look like key=value (value in JSON, e.g. n_estimators=50)")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def build_model(
    name: str, horizon: int, freq: str | None, targets: list[str] | None, params: dict[str, Any]
) -> Forecaster:
    """Create the registered model, with horizon-related settings raised to `horizon` where it has them."""
    if horizon < 1:
        raise BadInput(f"--horizon must be a positive number of steps, got {horizon}")
    known = available_models()
    if name not in known:
        raise BadInput(
            f"unknown model {name!r}; available: {', '.join(known)} (see `foresight forecast models`)"
        )
    config = dict(params)
    if targets is not None:
        config["target_metrics"] = targets
    if freq is not None:
        config["freq"] = freq
    try:
        defaults = create_forecaster(name).get_params()
        if "horizon" in defaults:
            config.setdefault("horizon", horizon)
        if "max_horizon" in defaults and int(defaults["max_horizon"]) < horizon:
            config.setdefault("max_horizon", horizon)
        return create_forecaster(name, **config)
    except TypeError as exc:
        raise BadInput(f"model {name!r} does not accept these settings: {exc}") from exc


# ---- progress ---------------------------------------------------------------------------------------
class ProgressForecaster(Forecaster):
    """Delegates to a model and advances a rich progress task at every prediction (one per cutoff)."""

    def __init__(self, inner: Forecaster, label: str, progress: Progress, total: int) -> None:
        super().__init__(quantiles=inner.quantiles, target_metrics=inner.target_metrics, freq=inner.freq)
        self.inner = inner
        self.label = label
        self._progress = progress
        self._task = progress.add_task(f"fitting {label}", total=total)

    def fit(self, frame: pd.DataFrame) -> Self:
        self.inner.fit(frame)
        self._progress.update(self._task, description=f"backtesting {self.label}")
        return self

    def update(self, frame: pd.DataFrame) -> Self:
        self.inner.update(frame)
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        out = self.inner.predict(horizon)
        self._progress.advance(self._task)
        return out

    def _fit_data(self, data: Any, raw: pd.DataFrame) -> None:  # pragma: no cover - fit is delegated
        raise NotImplementedError

    def _update_data(self, data: Any, raw: pd.DataFrame) -> None:  # pragma: no cover
        raise NotImplementedError

    def _predict_frame(self, horizon: int) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError


def progress_bar() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console, transient=False)


# ---- metrics --------------------------------------------------------------------------------------------
def _clean(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


def per_series_metrics(
    forecasts: pd.DataFrame, frame: pd.DataFrame, test_fraction: float, model: Forecaster, season: int
) -> list[dict[str, Any]]:
    """The headline metrics of every (series, metric), MASE scaled on that series' own training part."""
    train, test = split_by_time(frame, test_fraction)
    train_by, test_by = dict(list(train.groupby("series_id"))), dict(list(test.groupby("series_id")))
    rows = []
    for (sid, met), part in forecasts.groupby(["series", "metric"], sort=True):
        m, _ = evaluate(part, test_by[sid], train_by[sid], model.quantiles, season, (str(met),))
        rows.append({"series": sid, "metric": met, **_clean(m)})
    return rows


# ---- commands ----------------------------------------------------------------------------------------
@forecast_app.command("models")
def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object name -> description")] = False,
) -> None:
    """List every registered model with a one-line description (the default is marked)."""
    names = available_models()
    factories = getattr(registry, "_REGISTRY", {})
    docs = {n: (inspect.getdoc(factories.get(n)) or "").split("\n")[0] for n in names}
    if as_json:
        typer.echo(json.dumps({"default": DEFAULT_MODEL, "models": docs}))
        return
    width = max(len(n) for n in names)
    for n in names:
        mark = " (default)" if n == DEFAULT_MODEL else ""
        typer.echo(f"{n:<{width}}  {docs[n]}{mark}")


InputOpt = Annotated[Path, typer.Option("--input", help="Long CSV: series,timestamp,value[,metric]")]
HorizonOpt = Annotated[int, typer.Option(help="Steps ahead to forecast at every cutoff")]
ModelOpt = Annotated[str, typer.Option(help="Registered model name (see `foresight forecast models`)")]
TargetOpt = Annotated[str, typer.Option(help="Metric to forecast, or 'all'; others serve as covariates")]
FreqOpt = Annotated[str | None, typer.Option(help="Sampling interval, e.g. 10min (default: inferred)")]
ParamOpt = Annotated[list[str], typer.Option("--param", help="Model setting key=JSON value, repeatable")]


@forecast_app.command("backtest")
def backtest_command(
    input_file: InputOpt,
    horizon: HorizonOpt,
    model: ModelOpt = DEFAULT_MODEL,
    target_metric: TargetOpt = _ALL,
    test_fraction: Annotated[float, typer.Option(help="Last fraction of each series used as cutoffs")] = 0.2,
    freq: FreqOpt = None,
    step: Annotated[int, typer.Option(help="Use every step-th test timestamp as a cutoff")] = 1,
    output: Annotated[Path | None, typer.Option(help="Write all forecasts here (ForecastFrame CSV)")] = None,
    metrics: Annotated[Path | None, typer.Option(help="Write overall and per-series metrics (JSON)")] = None,
    param: ParamOpt = [],  # noqa: B006 - typer reads the default, never mutates it
) -> None:
    """Rolling-origin backtest: fit before the test part, update and forecast at every test timestamp."""
    try:
        frame = read_long_csv(input_file)
        targets = select_target(frame, target_metric)
        check_history(frame, test_fraction)
        if step < 1:
            raise BadInput(f"--step must be >= 1, got {step}")
        forecaster = build_model(model, horizon, freq, targets, parse_params(param))
        _, test = split_by_time(frame, test_fraction)
        n_cutoffs = len(np.unique(test["ts"].to_numpy())[::step])
        with progress_bar() as progress:
            wrapped = ProgressForecaster(forecaster, model, progress, n_cutoffs)
            result = backtest(wrapped, frame, horizon, test_fraction=test_fraction, step=step)
    except BadInput as exc:
        fail(str(exc))
    except (ForecastingError, ValueError, KeyError) as exc:
        fail(str(exc))
    season = int(result.metrics.get("season_length", 1))
    report: dict[str, Any] = {
        "input": str(input_file), "model": model, "horizon": horizon, "test_fraction": test_fraction,
        "step": step, "overall": _clean(result.metrics),
        "per_series": per_series_metrics(result.forecasts, frame, test_fraction, forecaster, season),
    }  # fmt: skip
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        result.forecasts.to_csv(output, index=False)
    if metrics is not None:
        metrics.parent.mkdir(parents=True, exist_ok=True)
        metrics.write_text(json.dumps(report, indent=2) + "\n")
    _print_summary(model, report)
    typer.echo(json.dumps({"model": model, "rows": len(result.forecasts), **report["overall"]}))


def _print_summary(model: str, report: dict[str, Any]) -> None:
    keys = ("wql", "crps", "coverage_50", "coverage_80", "coverage_95", "mae", "rmse", "mase")
    heads = ("wQL", "CRPS", "cov50", "cov80", "cov95", "MAE", "RMSE", "MASE")
    table = Table("series", "metric", *heads, title=f"backtest of {model}")
    rows = [{"series": "(all)", "metric": "", **report["overall"]}, *report["per_series"]]
    for row in rows[:30]:
        cells = ["-" if row.get(k) is None else f"{row[k]:.4g}" for k in keys]
        table.add_row(str(row["series"]), str(row["metric"]), *cells)
    console.print(table)


def _safe_name(group: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", group) or "_"


@forecast_app.command("fit")
def fit_command(
    inputs: Annotated[list[Path], typer.Option("--input", help="Long CSV, repeatable: one group per file")],
    horizon: HorizonOpt,
    output_dir: Annotated[Path, typer.Option(help="Directory for <group>.forecaster files + manifest")],
    model: ModelOpt = DEFAULT_MODEL,
    group_by: Annotated[str | None, typer.Option(help="Column splitting each file into groups")] = None,
    target_metric: TargetOpt = _ALL,
    freq: FreqOpt = None,
    param: ParamOpt = [],  # noqa: B006
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster (default: a local Ray)")] = None,
    ray: Annotated[bool, typer.Option(help="Fit on Ray (--no-ray: one after another here)")] = True,
) -> None:
    """Fit one model per group (file, or value of --group-by) as Ray tasks; write the artifacts."""
    try:
        groups: dict[str, pd.DataFrame] = {}
        for path in inputs:
            frame = read_long_csv(path)
            if group_by is None:
                groups[path.stem] = frame
                continue
            if group_by not in frame.columns:
                raise BadInput(f"{path.name} has no column {group_by!r} for --group-by")
            for key, part in frame.groupby(group_by, sort=True):
                groups[str(key)] = part.drop(columns=[group_by])
        names = {_safe_name(g) for g in groups}
        if len(names) < len(groups):
            raise BadInput("group names collide after making them file names; rename the files or groups")
        config_model = build_model(model, horizon, freq, None, parse_params(param))
        config = config_model.get_params()
        if target_metric != _ALL:
            for frame in groups.values():
                select_target(frame, target_metric)
            config["target_metrics"] = [target_metric]
        with progress_bar() as progress:
            task = progress.add_task(f"fitting {model} on {len(groups)} group(s)", total=len(groups))
            artifacts = train_many(
                groups, model, config, ray_address, use_ray=None if ray else False,
                on_done=lambda _: progress.advance(task),
            )  # fmt: skip
    except BadInput as exc:
        fail(str(exc))
    except GroupTrainingError as exc:
        if not exc.input_error:
            raise
        fail(str(exc))
    except (ForecastingError, ValueError, KeyError) as exc:
        fail(str(exc))
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for group, blob in artifacts.items():
        path = output_dir / f"{_safe_name(group)}.forecaster"
        path.write_bytes(blob)
        files[group] = path.name
    manifest = {"model": model, "horizon": horizon, "config": {k: repr(v) for k, v in config.items()},
                "artifacts": files}  # fmt: skip
    (output_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    typer.echo(json.dumps({"model": model, "groups": len(files), "output_dir": str(output_dir)}))
