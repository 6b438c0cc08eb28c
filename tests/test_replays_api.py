"""Replays over the API on both backends: a run on a bundled trace and a comparison finish with their
summary, report and timeline; bad requests are 422 at once; a run that fails says why and stores no
results; a run whose process died is marked failed by the watchdog."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from service.cli import app
from service.db import Database
from service.models import ReplayRun
from service.replays.jobs import fail_stale
from tests.conftest import settings_for
from tests.helpers import batch, bearer, series

QUICK = {"step_seconds": 300, "max_steps": 120, "power": {"policy": "none"}}
SUMMARY_KEYS = {
    "policy", "trace", "simulated_seconds", "replica_hours", "requests_total", "sla_violation_rate",
    "p99_latency_s", "energy_kwh", "power_budget_breach_minutes", "capped_server_minutes", "scaling_actions",
    "node_downtime_minutes",
}  # fmt: skip


@pytest.fixture
def keys(make_key: Callable[..., str]) -> dict[str, dict[str, str]]:
    return {scope: bearer(make_key(scope, name=f"{scope}-key")) for scope in ("read", "operate")}


def _finished(client: httpx.Client, keys: dict[str, dict[str, str]], run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 600  # a bound for a loaded machine, not a timing
    while time.monotonic() < deadline:
        run = client.get(f"/v1/replays/{run_id}", headers=keys["read"]).json()
        if run["status"] in ("succeeded", "failed"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"replay {run_id} did not finish")


def test_run_on_a_bundled_trace(client: httpx.Client, keys: dict[str, dict[str, str]]) -> None:
    traces = client.get("/v1/replays/traces", headers=keys["read"]).json()
    assert {"azure-llm-code", "nab-ec2-cpu"} <= {t["name"] for t in traces}
    body = {"trace": "nab-ec2-cpu", "policy": "hpa", "config": QUICK}
    assert client.post("/v1/replays", json=body, headers=keys["read"]).status_code == 403
    started = client.post("/v1/replays", json=body, headers=keys["operate"])
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "queued" and started.json()["created_by"].startswith(
        "key:operate-key#"
    )
    run = _finished(client, keys, started.json()["id"])
    assert run["status"] == "succeeded", run["error"]
    assert set(run["summary"]) >= SUMMARY_KEYS and run["summary"]["policy"] == "hpa"
    assert run["progress"] == 1.0 and run["has_report"] and run["has_timeline"]
    report = client.get(f"/v1/replays/{run['id']}/report", headers=keys["read"])
    assert report.status_code == 200 and "text/html" in report.headers["content-type"]
    assert not re.search(r"<script[^>]*src=[\"']?https?:", report.text)  # offline: no script from the web
    assert "plotly" in report.text.lower()
    timeline = client.get(f"/v1/replays/{run['id']}/timeline", headers=keys["read"])
    assert timeline.status_code == 200 and timeline.text.splitlines()[0].count(",") >= 4
    listed = client.get("/v1/replays", headers=keys["read"]).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == run["id"]


def test_comparison_of_uploaded_trace(client: httpx.Client, keys: dict[str, dict[str, str]]) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = ["timestamp,value"] + [
        f"{(start + timedelta(minutes=5 * i)).isoformat()},{50 + 30 * ((i // 12) % 2)}" for i in range(300)
    ]
    body = {"trace_csv": "\n".join(rows), "trace_name": "square.csv", "trace_format": "long",
            "policies": ["hpa", "static-peak"], "seeds": 2, "config": QUICK}  # fmt: skip
    started = client.post("/v1/replays", json=body, headers=keys["operate"])
    assert started.status_code == 202, started.text
    run = _finished(client, keys, started.json()["id"])
    assert run["status"] == "succeeded", run["error"]
    assert set(run["summary"]) == {"hpa", "static-peak"}
    assert set(run["summary"]["hpa"]["replica_hours"]) == {"mean", "std", "min", "max"}
    assert run["has_report"] and not run["has_timeline"]
    assert client.get(f"/v1/replays/{run['id']}/timeline", headers=keys["read"]).status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trace": "nab-ec2-cpu", "policy": "magic"}, "policy"),
        ({"trace": "nope", "policy": "hpa"}, "trace"),
        ({"trace": "nab-ec2-cpu", "policy": "hpa", "config": {"warp": 9}}, "config"),
        ({"trace_csv": "a,b\n1,2\n", "trace_format": "long", "policy": "hpa"}, "trace_csv"),
        ({"trace": "nab-ec2-cpu", "trace_csv": "x", "policy": "hpa"}, "trace_csv"),
        ({"trace": "nab-ec2-cpu", "policy": "hpa", "policies": ["hpa"]}, "policies"),
        ({"source": {}}, "source"),
        ({"source": {"series": 1}, "trace": "nab-ec2-cpu"}, "source"),
        ({"trace": "nab-ec2-cpu", "policies": ["hpa"], "hpa_targets": [0.7]}, "hpa_targets"),
        ({"source": {"workload": "web"}, "hpa_targets": [1.5]}, "hpa_targets"),
    ],
)
def test_bad_requests_are_refused_before_queueing(
    client: httpx.Client,
    database: Database,
    keys: dict[str, dict[str, str]],
    body: dict[str, Any],
    field: str,
) -> None:
    answer = client.post("/v1/replays", json=body, headers=keys["operate"])
    assert answer.status_code == 422 and field in answer.text
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM replays")).scalar_one() == 0


def test_a_failing_run_says_why_and_stores_no_results(
    client: httpx.Client, keys: dict[str, dict[str, str]]
) -> None:
    body = {"trace": "nab-ec2-cpu", "policy": "hpa", "config": {**QUICK, "cluster": {"nodes": -1}}}
    started = client.post("/v1/replays", json=body, headers=keys["operate"])
    assert started.status_code == 202, started.text
    run = _finished(client, keys, started.json()["id"])
    assert run["status"] == "failed" and "cluster.nodes" in run["error"]
    assert run["summary"] is None and not run["has_report"] and not run["has_timeline"]
    assert client.get(f"/v1/replays/{run['id']}/report", headers=keys["read"]).status_code == 409


def test_watchdog_fails_runs_whose_process_died(database: Database, migrated_url: str) -> None:
    old = datetime.now(UTC) - timedelta(hours=1)
    with database.session() as session:
        session.add(
            ReplayRun(
                kind="run",
                status="running",
                trace="t",
                trace_format="long",
                policies=["hpa"],
                seeds=1,
                config={},
                created_by="x",
                created_at=old,
                heartbeat_at=old,
                progress=0.4,
            )
        )
    with database.session() as session:
        result = fail_stale(session, settings_for(migrated_url))
    assert len(result["failed"]) == 1
    with database.engine.connect() as connection:
        status, error = connection.execute(text("SELECT status, error FROM replays")).one()
    assert status == "failed" and "interrupted" in error


def _stored_workload(client: httpx.Client, admin: dict[str, str]) -> None:
    """A workload with two days of a seeded daily pattern at 5-minute steps, ending now."""
    step, count = 300, 576
    end = int(time.time()) // step * step
    rng = np.random.default_rng(7)
    t = end - step * np.arange(count)[::-1]
    load = 120 + 60 * np.sin(2 * np.pi * t / 86400) + rng.gamma(2.0, 6.0, count)
    samples = [[int(a), round(float(b), 3)] for a, b in zip(t, load, strict=True)]
    body = batch(series("web", "requests_per_second", "req/s", samples, kind="workload"))
    assert client.post("/v1/telemetry", json=body, headers=admin).status_code == 200
    config = {"cluster": "west", "replicas": 4, "replica_capacity": 25.0, "max_replicas": 40,
              "capacity_metric": "requests_per_second", "slo": {"cost_per_replica": 0.5}}  # fmt: skip
    assert client.put("/v1/workloads/web", json=config, headers=admin).status_code == 200


def test_savings_of_stored_telemetry_agree_with_replay_compare(
    client: httpx.Client, make_key: Callable[..., str], tmp_path: Path
) -> None:
    """POST /v1/replays {source: {workload}} replays the workload's own series through Bayesian, HPA
    (swept) and static peak; the CLI on the same trace and settings gives the same numbers."""
    admin = bearer(make_key("admin", name="admin-key"))
    _stored_workload(client, admin)
    body = {"source": {"workload": "web"}, "hpa_targets": [0.6, 0.9], "config": {"power": {"policy": "none"}}}
    started = client.post("/v1/replays", json=body, headers=admin)
    assert started.status_code == 202, started.text
    assert started.json()["kind"] == "savings" and started.json()["trace"] == "web.csv"
    config = started.json()["config"]
    assert config["serving"]["replica_capacity"] == 25.0 and config["step_seconds"] == 300  # the workload's
    run = _finished(client, {"read": admin}, started.json()["id"])
    assert run["status"] == "succeeded", run["error"]
    summary = run["summary"]
    assert set(summary["comparison"]) == {"bayesian", "hpa", "static-peak"}
    assert [p["target"] for p in summary["hpa_curve"]] == [0.6, 0.9]

    trace = client.get(f"/v1/replays/{run['id']}/trace", headers=admin)
    assert trace.status_code == 200 and trace.text.startswith("series,timestamp,value")
    (tmp_path / "web.csv").write_text(trace.text)
    settings = {k: v for k, v in config.items() if k != "hpa_targets"}
    (tmp_path / "config.json").write_text(json.dumps(settings))
    cli = CliRunner()
    args = ["replay", "compare", "--trace", str(tmp_path / "web.csv"), "--trace-format", "long",
            "--config", str(tmp_path / "config.json"), "--seeds", "1"]  # fmt: skip
    done = cli.invoke(app, [*args, "--policies", "bayesian,hpa,static-peak", "--output", str(tmp_path / "c")])
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "c" / "comparison.json").read_text()) == summary["comparison"]
    swept = {**settings, "scaling": {**settings["scaling"], "target_utilisation": 0.6}}
    (tmp_path / "swept.json").write_text(json.dumps(swept))
    args[args.index(str(tmp_path / "config.json"))] = str(tmp_path / "swept.json")
    done = cli.invoke(app, [*args, "--policies", "hpa", "--output", str(tmp_path / "h")])
    assert done.exit_code == 0, done.output
    hpa = json.loads((tmp_path / "h" / "comparison.json").read_text())["hpa"]
    assert summary["hpa_curve"][0]["replica_hours"] == hpa["replica_hours"]["mean"]

    saved = summary["savings"]
    bayes, static = summary["comparison"]["bayesian"], summary["comparison"]["static-peak"]
    expected = static["replica_hours"]["mean"] - bayes["replica_hours"]["mean"]
    assert saved["vs_static_peak"]["replica_hours_saved"] == pytest.approx(expected)
    assert saved["vs_static_peak"]["money_saved"] == pytest.approx(0.5 * expected)  # the workload's cost
    retuned = saved["vs_hpa_retuned"]
    at_most = [
        p for p in summary["hpa_curve"] if p["sla_violation_rate"] <= bayes["sla_violation_rate"]["mean"]
    ]
    if at_most:
        cheapest = min(at_most, key=lambda p: p["replica_hours"])
        assert (
            retuned["target"] == cheapest["target"] and retuned["replica_hours"] == cheapest["replica_hours"]
        )
    else:
        assert retuned is None
