"""`foresight forecast backtest` / `models`: the output contract on real NAB series (exact ForecastFrame
columns, cutoffs only in the test part, metrics JSON keys) and exit code 2 with a helpful message for bad
input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecasting import DEFAULT_MODEL, available_models, forecast_columns
from service.forecasts.cli import forecast_app
from tests.helpers import REPO_ROOT

NAB = REPO_ROOT / "service" / "sample_data" / "nab"
METRIC_KEYS = {"wql", "crps", "coverage_50", "coverage_80", "coverage_95", "mae", "rmse", "mase"}
FAST_LGB = (
    '{"n_estimators": 10, "max_train_rows": 1500, "num_leaves": 8, "min_data_in_leaf": 10, "num_threads": 1}'
)
runner = CliRunner()


@pytest.fixture(scope="module")
def nab_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real NAB CPU series, 300 points each (25 h at 5 min), as one long CSV."""
    parts = []
    for name, series in (("ec2_cpu_utilization_24ae8d", "ec2-a"), ("rds_cpu_utilization_cc0c53", "rds-b")):
        frame = pd.read_csv(NAB / f"{name}.csv").head(300)
        parts.append(frame.assign(series=series)[["series", "timestamp", "value"]])
    path = tmp_path_factory.mktemp("nab") / "two.csv"
    pd.concat(parts).to_csv(path, index=False)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(forecast_app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_backtest_writes_forecast_frame_and_metrics(nab_csv: Path, tmp_path: Path) -> None:
    preds, metrics = tmp_path / "p.csv", tmp_path / "m.json"
    code, out, err = invoke(
        "backtest", "--input", str(nab_csv), "--horizon", "4", "--model", "seasonal_naive",
        "--output", str(preds), "--metrics", str(metrics),
    )  # fmt: skip
    assert code == 0, err
    frame = pd.read_csv(preds)
    assert list(frame.columns) == forecast_columns()
    source = pd.read_csv(nab_csv)
    for series, part in frame.groupby("series"):
        stamps = pd.to_datetime(source.loc[source["series"] == series, "timestamp"], utc=True).sort_values()
        test_part = set(stamps.iloc[-60:])  # the last 20% of 300
        cutoffs = set(pd.to_datetime(part["cutoff"], utc=True))
        assert cutoffs == test_part
        assert set(part["horizon"]) == {1, 2, 3, 4}
    report = json.loads(metrics.read_text())
    assert set(report["overall"]) >= METRIC_KEYS
    assert {(r["series"], r["metric"]) for r in report["per_series"]} == {
        ("ec2-a", "value"),
        ("rds-b", "value"),
    }
    assert all(set(r) >= METRIC_KEYS for r in report["per_series"])
    assert json.loads(out.strip().splitlines()[-1])["rows"] == len(frame)


def test_backtest_default_model_with_metric_column_and_target(tmp_path: Path, nab_csv: Path) -> None:
    frame = pd.read_csv(nab_csv)
    load = frame.assign(metric="cpu")
    other = frame.assign(metric="requests", value=frame["value"] * 10)
    path = tmp_path / "metrics.csv"
    pd.concat([load, other]).to_csv(path, index=False)
    preds = tmp_path / "p.csv"
    code, _, err = invoke(
        "backtest", "--input", str(path), "--horizon", "3", "--model", DEFAULT_MODEL,
        "--target-metric", "cpu", "--step", "10", "--output", str(preds),
        "--param", f'candidate_config={{"lightgbm": {FAST_LGB}}}', "--param", "validation_points=12",
    )  # fmt: skip
    assert code == 0, err
    out = pd.read_csv(preds)
    assert list(out.columns) == forecast_columns() and set(out["metric"]) == {"cpu"}
    assert out.groupby("series")["cutoff"].nunique().tolist() == [6, 6]


@pytest.mark.parametrize(
    ("content", "args", "fragment"),
    [
        ("series,timestamp\na,1700000000\n", [], "missing column(s) ['value']"),
        ("series,timestamp,value\na,1700000000,1\na,1700000300,\n", [], "line 3"),
        ("series,timestamp,value\na,1700000000,1\na,1700000300,inf\n", [], "not a finite number"),
        ("series,timestamp,value\na,yesterday,1\na,1700000300,2\n", [], "timestamp"),
        ("series,timestamp,value\na,1700000000,1\na,1700000300,2\n", [], "at least"),
        (None, ["--model", "no_such_model"], "available: "),
        (None, ["--target-metric", "gpu"], "its metrics are ['value']"),
        (None, ["--test-fraction", "1.5"], "--test-fraction"),
        (None, ["--param", "bogus=1"], "does not accept"),
    ],
)
def test_bad_input_exits_2_with_a_reason(
    nab_csv: Path, tmp_path: Path, content: str | None, args: list[str], fragment: str
) -> None:
    path = nab_csv
    if content is not None:
        path = tmp_path / "bad.csv"
        path.write_text(content)
    base = ["backtest", "--input", str(path), "--horizon", "3", "--model", "seasonal_naive"]
    code, _, err = invoke(*base, *args)
    assert code == 2
    assert "error:" in err and fragment in err
    assert "Traceback" not in err
    if "no_such_model" in args:
        assert all(name in err for name in available_models())


def test_too_little_history_for_the_model_names_what_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    rows = [f"a,{1_700_000_000 + 300 * i},{i % 7}" for i in range(8)]
    path.write_text("series,timestamp,value\n" + "\n".join(rows) + "\n")
    code, _, err = invoke("backtest", "--input", str(path), "--horizon", "3", "--model", "lightgbm")
    assert code == 2
    assert "needs at least 30" in err and "send longer series" in err


def test_models_lists_every_registered_model() -> None:
    code, out, _ = invoke("models")
    assert code == 0
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert listed == set(available_models())
    assert f"{DEFAULT_MODEL} " in out and "(default)" in out
    code, out, _ = invoke("models", "--json")
    assert set(json.loads(out)["models"]) == set(available_models())


def test_entry_point_mounts_the_forecast_commands(nab_csv: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "forecast", "backtest", "--input", str(nab_csv), "--horizon",
         "2", "--model", "nope"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "unknown model 'nope'" in result.stderr
