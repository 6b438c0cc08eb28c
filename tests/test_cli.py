"""The CLI against both backends: `db upgrade`, `ingest` of long and two-column CSV files (whole file or
nothing, re-import stores nothing twice), start-up that imports no model library, and a missing
database answered in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.db import Database
from tests.conftest import pg_url, require_postgres
from tests.helpers import REPO_ROOT, counts, snapshot
from tests.test_auth import run_cli

NAB_FILE = REPO_ROOT / "service" / "sample_data" / "nab" / "ec2_cpu_utilization_24ae8d.csv"


def test_ingest_long_csv_and_reimport(database: Database, migrated_url: str, tmp_path: Path) -> None:
    csv = tmp_path / "long.csv"
    rows = ["series,timestamp,value,metric"]
    rows += [f"node-{i % 3},{1_700_000_000 + 60 * i},{i * 0.5},cpu_utilization" for i in range(300)]
    rows += [f"node-0,{1_700_000_000 + 60 * i},{i},memory_used_bytes" for i in range(10)]
    csv.write_text("\n".join(rows) + "\n")
    first = run_cli(migrated_url, "ingest", str(csv), "--cluster", "lab", "--unit", "1")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert (summary["samples"], summary["accepted"], summary["series_created"]) == (310, 310, 4)
    again = json.loads(
        run_cli(migrated_url, "ingest", str(csv), "--cluster", "lab", "--unit", "1").stdout.splitlines()[-1]
    )
    assert (again["accepted"], again["duplicates"]) == (0, 310)
    assert counts(database) == (4, 310)


def test_ingest_two_column_trace(database: Database, migrated_url: str) -> None:
    result = run_cli(
        migrated_url,
        "ingest",
        str(NAB_FILE),
        "--series",
        "ec2-24ae8d",
        "--metric",
        "cpu_utilization",
        "--unit",
        "%",
    )
    assert result.returncode == 0, result.stderr
    assert counts(database) == (1, 4032)


@pytest.mark.parametrize(
    ("content", "args", "fragment"),
    [
        ("series,timestamp,value\nn1,1700000000,1\nn1,1700000060,nan\n", ["--metric", "m"], "NaN"),
        (
            "series,timestamp,value\nn1,1700000000,1\nn2,1700000000,-4\n",
            ["--metric", "m", "--unit", "W"],
            "negative",
        ),
        ("timestamp,value\n2024-01-01 00:00:00,1\n", ["--metric", "m"], "--series"),
        ("series,value\nn1,1\n", ["--metric", "m"], "timestamp"),
        ("series,timestamp,value\nn1,1700000000,1\n", [], "--metric"),
    ],
)
def test_bad_csv_exits_2_and_stores_nothing(
    database: Database, migrated_url: str, tmp_path: Path, content: str, args: list[str], fragment: str
) -> None:
    run_cli(migrated_url, "ingest", str(NAB_FILE), "--series", "keep", "--metric", "cpu", "--unit", "%")
    before = snapshot(database)
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    result = run_cli(migrated_url, "ingest", str(csv), *args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert snapshot(database) == before


@pytest.mark.postgres
def test_db_upgrade_on_fresh_postgres(make_pg_database: Callable[[], str]) -> None:
    url = make_pg_database()
    before = json.loads(run_cli(url, "db", "current").stdout)
    assert before["current"] is None and before["head"]
    assert run_cli(url, "db", "upgrade").returncode == 0
    after = json.loads(run_cli(url, "db", "current").stdout)
    assert after["current"] == after["head"]


def test_forecast_train_into_the_registry(database: Database, migrated_url: str) -> None:
    run_cli(migrated_url, "ingest", str(NAB_FILE), "--series", "ec2-24ae8d", "--metric", "cpu_utilization",
            "--unit", "%", "--cluster", "aws")  # fmt: skip
    trained = run_cli(migrated_url, "forecast", "train", "--cluster", "aws", "--model", "seasonal_naive")
    assert trained.returncode == 0, trained.stderr
    model = json.loads(trained.stdout.strip().splitlines()[-1])
    assert (model["name"], model["version"]) == ("seasonal_naive", 1)
    assert model["metrics"]["n"] > 0 and model["params"]["series"][0][1] == "aws/node/ec2-24ae8d"
    missing = run_cli(migrated_url, "forecast", "train", "--cluster", "nowhere")
    assert missing.returncode == 2 and "no series match" in missing.stderr
    bad = run_cli(migrated_url, "forecast", "train", "--cluster", "aws", "--config", "{oops")
    assert bad.returncode == 2 and "JSON" in bad.stderr
    per_cluster = run_cli(migrated_url, "forecast", "train", "--per-cluster", "--model", "seasonal_naive")
    assert per_cluster.returncode == 0, per_cluster.stderr
    batch_model = json.loads(per_cluster.stdout.strip().splitlines()[-1])
    assert batch_model["version"] == 2 and batch_model["metrics"] == {"backtest": "not run in batch training"}


def test_loop_kill_switch_from_the_command_line(database: Database, migrated_url: str) -> None:
    frozen = run_cli(migrated_url, "loop", "freeze", "--reason", "maintenance")
    assert frozen.returncode == 0 and "actuation frozen" in frozen.stdout, frozen.stderr
    status = json.loads(run_cli(migrated_url, "loop", "status").stdout)
    assert status["actuation"] == "frozen" and status["frozen_reason"] == "maintenance"
    assert status["frozen_by"].startswith("cli:")
    assert "actuation enabled" in run_cli(migrated_url, "loop", "unfreeze").stdout
    ran = json.loads(run_cli(migrated_url, "loop", "run-once").stdout.strip().splitlines()[-1])
    assert ran["claimed"] == 0


MODEL_LIBRARIES = ("torch", "lightgbm", "statsforecast", "econml", "sklearn", "ray", "lightning",
                   "pytorch_forecasting", "statsmodels", "plotly", "fastapi", "uvicorn")  # fmt: skip
PROBE = """
import json, sys
from service.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
except (SystemExit, Exception):  # help and usage answers end this way; the imports are what counts
    pass
print(json.dumps(sorted(name for name in {libs!r} if name in sys.modules)))
"""


@pytest.mark.parametrize("argv", [[], ["--help"], ["keys", "--help"], ["db", "current", "--help"]])
def test_commands_without_models_import_no_model_library(argv: list[str]) -> None:
    """The import graph of start-up (not a timing): importing the CLI and running a command that needs
    no model leaves torch, LightGBM, statsforecast, econml, Ray, … unimported."""
    probe = PROBE.format(libs=MODEL_LIBRARIES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORESIGHT_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=120, check=True)  # fmt: skip
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_lazy_sub_commands_load_when_used() -> None:
    help_page = CliRunner().invoke(app, ["--help"])
    assert help_page.exit_code == 0
    for name in ("forecast", "mitigation", "loop", "sources", "replay", "backfill"):
        assert name in help_page.output
    policies = CliRunner().invoke(app, ["replay", "policies"])
    assert policies.exit_code == 0 and "bayesian" in policies.output
    models = CliRunner().invoke(app, ["forecast", "--help"])
    assert models.exit_code == 0 and "train" in models.output  # wired onto the lazily loaded group


def test_db_upgrade_on_a_missing_postgres_database_says_so_in_one_line() -> None:
    require_postgres()
    name = f"foresight_missing_{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORESIGHT_")}
    env.update(PYTHONPATH=str(REPO_ROOT), FORESIGHT_DATABASE_URL=pg_url(name), COLUMNS="80")
    done = subprocess.run([sys.executable, "-m", "service.cli", "db", "upgrade"], capture_output=True,
                          text=True, env=env, cwd=REPO_ROOT, timeout=120)  # fmt: skip
    assert done.returncode == 2
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "does not exist" in lines[0] and "createdb" in lines[0] and name in lines[0]
