"""Against the real Prometheus (Debian's package): it scrapes node-exporter, Foresight's /metrics and the
forecast export, and remote-writes (counters as rates) to Foresight. Series arrive mapped; a Foresight
restart loses nothing Prometheus reported as sent; a backfill from the same Prometheus reproduces the stored
history; Prometheus scrapes the export (up == 1) and the forecast series are queryable there.

Every wait polls Prometheus's own state with a deadline; nothing depends on timing luck.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from service import migrate
from service.auth import service as auth_service
from service.cli import app as cli_app
from service.config import get_settings
from service.db import Database
from service.integrations import backfill
from service.integrations.labels import load_mapping
from service.integrations.sources import SourceStore
from tests.conftest import settings_for
from tests.helpers import bearer
from tests.integrations.conftest import Process, free_port
from tests.integrations.helpers import eventually, stored_series
from tests.integrations.stack import FixedPortServer, PrometheusProbe, as_us, now, prometheus_config, stored

WANTED = (
    "node_load1",
    "node_cpu_seconds_total",
    "node_cpu_seconds:rate",
    "up",
    "node_memory_MemAvailable_bytes",
)
COMPARED = [
    "up",
    "node_load1",
    "node_cpu_seconds_total",
    "node_memory_MemAvailable_bytes",
    "scrape_duration_seconds",
]


@dataclass
class Stack:
    backend: str
    url: str
    database: Database
    server: FixedPortServer
    prometheus: PrometheusProbe
    keys: dict[str, str]
    cluster: str
    started: float
    workdir: Path
    load_series: int


def _new_database(backend: str, make_pg_database: Callable[[], str], directory: Path) -> str:
    url = make_pg_database() if backend == "postgres" else f"sqlite:///{directory / 'foresight.db'}"
    database = Database(settings_for(url))
    migrate.upgrade(database.engine)
    database.dispose()
    return url


def _seed_forecast(http: httpx.Client, keys: dict[str, str]) -> int:
    """A workload load series, a seasonal-naive model covering it, and a scaling decision, for the exports."""
    t = np.arange(3 * 288) * 300 + int(now()) - 3 * 86400
    values = 100 + 40 * np.sin(2 * np.pi * t / 86400)
    item = {
        "entity": {"kind": "workload", "id": "web", "cluster": "west"},
        "metric": "requests_per_second",
        "unit": "req/s",
        "samples": [[int(a), round(float(b), 3)] for a, b in zip(t, values, strict=True)],
    }
    assert (
        http.post("/v1/telemetry", json={"series": [item]}, headers=bearer(keys["ingest"])).status_code == 200
    )
    trained = http.post(
        "/v1/models/train",
        json={"model": "seasonal_naive", "entity_kind": "workload"},
        headers=bearer(keys["admin"]),
    )
    assert trained.status_code == 201, trained.text
    workload = {
        "cluster": "west",
        "replicas": 10,
        "replica_capacity": 10.0,
        "capacity_metric": "requests_per_second",
        "max_replicas": 40,
        "mode": "approve",
    }
    assert http.put("/v1/workloads/web", json=workload, headers=bearer(keys["admin"])).status_code == 200
    decided = http.post(
        "/v1/recommendations/scaling", json={"workload": "web"}, headers=bearer(keys["admin"])
    )
    assert decided.status_code == 201, decided.text
    return int(stored_series(http, keys["read"], metric="requests_per_second")[0]["id"])


@pytest.fixture(scope="module")
def stack(
    backend: str,
    make_pg_database: Callable[[], str],
    prometheus_binaries: dict[str, str],
    node_exporter: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"prometheus-{backend}")
    url = _new_database(backend, make_pg_database, workdir)
    database = Database(settings_for(url))
    with database.session() as session:
        keys = {
            scope: auth_service.create_key(session, f"it-{scope}", [scope]).key
            for scope in ("ingest", "read", "admin")
        }
    server = FixedPortServer(settings_for(url), free_port()).start()
    with httpx.Client(base_url=server.url, timeout=120) as http:
        load_series = _seed_forecast(http, keys)
    cluster = f"it-{backend}"
    config = workdir / "prometheus.yml"
    config.write_text(
        prometheus_config(f"127.0.0.1:{server.port}", node_exporter, keys["ingest"], keys["read"], cluster)
    )
    port = free_port()
    started = now()
    process = Process(
        [
            prometheus_binaries["prometheus"],
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1d",
        ],
        workdir / "prometheus.log",
    )
    try:
        process.wait_http(f"http://127.0.0.1:{port}/-/ready", "Prometheus")
        yield Stack(
            backend,
            url,
            database,
            server,
            PrometheusProbe(f"http://127.0.0.1:{port}"),
            keys,
            cluster,
            started,
            workdir,
            load_series,
        )
    finally:
        process.stop()
        server.stop()
        database.dispose()


def _expected(stack: Stack, metrics: list[str], until: float) -> dict[Any, dict[int, float]]:
    """What Prometheus holds for `metrics` up to `until`, mapped as Foresight maps remote-written series."""
    mapping = load_mapping("")
    selector = '{__name__=~"' + "|".join(metrics) + '"}'
    span = int(until - stack.started) + 60
    out: dict[Any, dict[int, float]] = {}
    for item in stack.prometheus.query(f"{selector}[{span}s]", at=until):
        labels = dict(item["metric"])
        name = labels.pop("__name__")
        labels.setdefault("cluster", stack.cluster)  # external labels travel with remote-write, not queries
        mapped = mapping.resolve(name, tuple(sorted(labels.items())))
        assert not isinstance(mapped, str), (name, labels, mapped)
        key = (mapped.key.cluster, mapped.key.kind, mapped.key.name, mapped.key.metric, mapped.key.labels_key)
        out[key] = {as_us(float(t)): float(v) for t, v in item["values"] if np.isfinite(float(v))}
    return out


def test_series_arrive_with_mapped_entities(stack: Stack) -> None:
    with httpx.Client(base_url=stack.server.url, timeout=30) as http:

        def arrived() -> dict[str, Any]:
            # one query per metric: Prometheus also scrapes Foresight's own /metrics, whose process-wide
            # registry (in a long test run) can hold more series than one page of /v1/series
            found = {}
            for metric in WANTED:
                items = stored_series(http, stack.keys["read"], cluster=stack.cluster, metric=metric)
                if not items:
                    return {}
                found[metric] = items[0]
            return found

        found = eventually(arrived, "node-exporter series in Foresight", timeout=240, interval=0.2)
    load = found["node_load1"]
    assert (load["entity_kind"], load["entity_id"], load["labels"]) == ("node", "127.0.0.1", {"job": "node"})
    cpu = found["node_cpu_seconds_total"]
    assert cpu["unit"] == "s" and set(cpu["labels"]) == {"job", "cpu", "mode"}
    assert found["node_cpu_seconds:rate"]["unit"] == "1"
    assert found["node_memory_MemAvailable_bytes"]["unit"] == "B"


def test_restart_loses_nothing_prometheus_reported_as_sent(stack: Stack) -> None:
    probe = stack.prometheus
    probe.wait_sent_past(now())
    retried_before = probe.own_metric("prometheus_remote_storage_samples_retried_total")
    stack.server.stop()
    eventually(
        lambda: probe.own_metric("prometheus_remote_storage_samples_retried_total") > retried_before,
        "Prometheus to retry while Foresight is down",
        timeout=240,
        interval=0.2,
    )
    stack.server.start()
    restarted = now()
    complete_until = probe.wait_sent_past(restarted + 3)  # every series scraped again after the restart
    assert complete_until > restarted + 2
    expected = _expected(stack, COMPARED, complete_until)
    got = stored(stack.database, COMPARED, complete_until)
    assert set(expected) == set(got)
    for key, samples in expected.items():
        missing = sorted(set(samples) - set(got[key]))
        assert not missing, f"{key}: {len(missing)} samples lost, first at {missing[0] / 1e6}"
        assert got[key] == samples, key
    assert probe.own_metric("prometheus_remote_storage_samples_failed_total") == 0
    stale = [key for key, samples in got.items() if max(samples) <= restarted * 1e6]
    assert not stale, f"the comparison should cover the outage; these series stop before it: {stale}"


def test_backfill_reproduces_the_stored_history(
    stack: Stack, make_pg_database: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    until = stack.prometheus.wait_sent_past(now())
    url = _new_database(stack.backend, make_pg_database, tmp_path)
    sources = tmp_path / "sources.json"
    for name, value in (("DATABASE_URL", url), ("SOURCES_PATH", str(sources)), ("LOG_LEVEL", "WARNING")):
        monkeypatch.setenv(f"FORESIGHT_{name}", value)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        added = runner.invoke(
            cli_app,
            [
                "sources",
                "add",
                "prometheus",
                "--url",
                stack.prometheus.url,
                "--name",
                "it",
                "--match",
                '{job=~".+"}',
            ],
        )
        assert added.exit_code == 0, added.output
        middle = stack.started + (until - stack.started) / 2
        first = runner.invoke(
            cli_app,
            [
                "backfill",
                "--start",
                f"{stack.started - 30:.3f}",
                "--end",
                f"{middle:.3f}",
                "--chunk",
                "7s",
                "--counters",
                "rate",
            ],
        )
        assert first.exit_code == 0, first.output
    finally:
        get_settings.cache_clear()
    report = json.loads(first.stdout.strip().splitlines()[-1])
    assert report["chunks"] >= 2 and report["accepted"] > 0 and not report["resumed"]
    # run again to the end: it continues where the first run ended (a resumable, catching-up backfill)
    database = Database(settings_for(url))
    try:
        settings = settings_for(url, sources_path=str(sources))
        window = backfill.Window(stack.started - 30, until, 7.0)
        second = backfill.run(database, settings, SourceStore(sources), "it", window, rates=True)
        assert second.start == pytest.approx(middle, abs=1e-3)
        assert SourceStore(sources).progress("it").done_until == pytest.approx(until)  # type: ignore[union-attr]
        replica = stored(database)
    finally:
        database.dispose()
    original = stored(stack.database, None, until)
    original = {key: samples for key, samples in original.items() if '"job":' in key[4]}  # from Prometheus
    assert set(replica) == set(original)
    for key, samples in original.items():
        assert replica[key] == samples, key


def test_prometheus_scrapes_the_forecast_export(stack: Stack) -> None:
    probe = stack.prometheus
    eventually(
        lambda: [r for r in probe.query('up{job="foresight-exports"}') if r["value"][1] == "1"],
        "Prometheus to scrape the export with up == 1",
        timeout=240,
        interval=0.2,
    )
    selector = f'foresight_forecast{{series_id="{stack.load_series}",quantile="0.9"}}'
    found = eventually(
        lambda: probe.query(selector), "forecast series in Prometheus", timeout=240, interval=0.2
    )
    assert {item["metric"]["horizon"] for item in found} == {str(h) for h in range(1, 13)}
    assert all(item["metric"]["entity"] == "web" and item["metric"]["cluster"] == "west" for item in found)
    replicas = probe.query('foresight_recommendation{kind="scaling",target="web",param="replicas"}')
    assert replicas and float(replicas[0]["value"][1]) >= 1
