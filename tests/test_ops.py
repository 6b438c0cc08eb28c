"""Operations: liveness, readiness (database and schema), Prometheus metrics, OpenAPI docs, and 503 with
Retry-After, never 500, when the database is unreachable."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.db import Database
from tests.conftest import LiveServer, require_postgres, settings_for
from tests.helpers import T0, batch, bearer, series


def test_health_ready_docs(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "migrations": "ok"}
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "TelemetryBatch" in spec["components"]["schemas"]
    body = spec["paths"]["/v1/telemetry"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/TelemetryBatch"}


def _metric(client: httpx.Client, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_metrics_count_ingest_duplicates_rejections_and_requests(
    client: httpx.Client, make_key: Callable[..., str]
) -> None:
    headers = bearer(make_key("ingest"))
    before = {
        "ingested": _metric(client, "foresight_ingested_samples_total"),
        "duplicates": _metric(client, "foresight_duplicate_samples_total"),
        "rejected": _metric(client, "foresight_rejected_batches_total", reason="invalid_input"),
        "requests": _metric(client, "foresight_http_requests_total", route="/v1/telemetry", status="200"),
    }
    good = batch(series(samples=[[T0 + i, 1.0] for i in range(7)]))
    client.post("/v1/telemetry", json=good, headers=headers)
    client.post("/v1/telemetry", json=good, headers=headers)
    client.post("/v1/telemetry", json=batch(series(samples=[[T0, -1.0]])), headers=headers)
    assert _metric(client, "foresight_ingested_samples_total") - before["ingested"] == 7
    assert _metric(client, "foresight_duplicate_samples_total") - before["duplicates"] == 7
    assert (
        _metric(client, "foresight_rejected_batches_total", reason="invalid_input") - before["rejected"] == 1
    )
    requests = _metric(client, "foresight_http_requests_total", route="/v1/telemetry", status="200")
    assert requests - before["requests"] == 2
    assert _metric(client, "foresight_ingest_phase_seconds_count", phase="insert") > 0


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the probe closes


@pytest.fixture
def server_without_database(closed_port: int) -> Iterator[LiveServer]:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/foresight"
    server = LiveServer(settings_for(url, db_connect_timeout_seconds=2, retry_after_seconds=7)).start()
    yield server
    server.stop()


def test_unreachable_database_gives_503_with_retry_after(server_without_database: LiveServer) -> None:
    with httpx.Client(base_url=server_without_database.url, timeout=30) as http:
        assert http.get("/healthz").status_code == 200
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.headers["retry-after"] == "7"
        headers = bearer("fsk_000000000000_whatever")
        for answer in (
            http.post("/v1/telemetry", json=batch(series()), headers=headers),
            http.get("/v1/series", headers=headers),
        ):
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "7"
            assert answer.json()["error"]["code"] == "database_unavailable"


@pytest.mark.postgres
def test_readyz_reports_unmigrated_postgres(make_pg_database: Callable[[], str]) -> None:
    require_postgres()
    server = LiveServer(settings_for(make_pg_database())).start()
    try:
        ready = httpx.get(server.url + "/readyz", timeout=30)
        assert ready.status_code == 503
        assert "foresight db upgrade" in ready.json()["checks"]["migrations"]
    finally:
        server.stop()


def test_database_fixture_backend_is_real(database: Database, backend: str) -> None:
    assert database.dialect == ("postgresql" if backend == "postgres" else "sqlite")
