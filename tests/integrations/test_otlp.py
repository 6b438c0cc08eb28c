"""OTLP/HTTP metrics receiver over real HTTP on both backends: protobuf and JSON (gzip too), resource
attributes placing the series, histograms as count/sum counters, partial success, 400 for garbage."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import httpx
import pytest

from service.db import Database
from service.integrations import protos
from tests.helpers import T0, bearer, counts
from tests.integrations.helpers import samples_of, stored_series

NS = 1_000_000_000


@pytest.fixture
def keys(make_key: Callable[..., str]) -> dict[str, str]:
    return {"ingest": make_key("ingest"), "read": make_key("read")}


def _request() -> object:
    request = protos.ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    for key, value in (("host.name", "gpu-node-17"), ("k8s.cluster.name", "west"), ("os.type", "linux")):
        attribute = resource.resource.attributes.add(key=key)
        attribute.value.string_value = value
    metrics = resource.scope_metrics.add().metrics
    power = metrics.add(name="gpu.power", unit="W")
    for i, watts in enumerate((280.0, 290.5)):
        point = power.gauge.data_points.add(time_unix_nano=(T0 + 60 * i) * NS, as_double=watts)
        point.attributes.add(key="gpu.id").value.int_value = 0
    received = metrics.add(name="system.network.io", unit="By")
    received.sum.is_monotonic, received.sum.aggregation_temporality = True, protos.TEMPORALITY_CUMULATIVE
    received.sum.data_points.add(time_unix_nano=T0 * NS, as_int=12345)
    latency = metrics.add(name="http.server.duration", unit="ms")
    latency.histogram.aggregation_temporality = protos.TEMPORALITY_CUMULATIVE
    latency.histogram.data_points.add(time_unix_nano=T0 * NS, count=10, sum=250.0)
    missing = metrics.add(name="gpu.temperature", unit="Cel")
    missing.gauge.data_points.add(time_unix_nano=T0 * NS, as_double=50.0, flags=protos.FLAG_NO_RECORDED_VALUE)
    return request


def test_protobuf_is_mapped_and_answered_with_partial_success(
    client: httpx.Client, database: Database, keys: dict[str, str]
) -> None:
    body = _request().SerializeToString()  # type: ignore[attr-defined]
    headers = {"Content-Type": "application/x-protobuf", **bearer(keys["ingest"])}
    answer = client.post("/v1/metrics", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-protobuf"
    reply = protos.ExportMetricsServiceResponse.FromString(answer.content)
    assert reply.partial_success.rejected_data_points == 1
    assert "not_finite" in reply.partial_success.error_message
    found = {s["metric"]: s for s in stored_series(client, keys["read"], cluster="west")}
    assert set(found) == {
        "gpu.power",
        "system.network.io",
        "http.server.duration_count",
        "http.server.duration_sum",
    }
    power = found["gpu.power"]
    assert (power["entity_kind"], power["entity_id"], power["unit"], power["labels"]) == (
        "node",
        "gpu-node-17",
        "W",
        {"gpu_id": "0"},
    )
    assert samples_of(client, keys["read"], power["id"]) == [(T0, 280.0), (T0 + 60, 290.5)]
    assert found["system.network.io"]["unit"] == "B" and found["http.server.duration_sum"]["unit"] == "ms"
    again = client.post("/v1/metrics", content=body, headers=headers)  # a retry stores nothing twice
    assert again.status_code == 200 and counts(database) == (4, 5)


def test_json_and_gzip_encodings(client: httpx.Client, database: Database, keys: dict[str, str]) -> None:
    document = (
        '{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},'
        '"scopeMetrics":[{"metrics":[{"name":"requests","unit":"{request}","sum":{"aggregationTemporality":2,'
        f'"isMonotonic":true,"dataPoints":[{{"timeUnixNano":"{T0 * NS}","asInt":"42"}}]}}}}]}}]}}]}}'
    )
    headers = {"Content-Type": "application/json", **bearer(keys["ingest"])}
    answer = client.post("/v1/metrics?counters=rate", content=document.encode(), headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {}
    (item,) = stored_series(client, keys["read"])
    assert (item["entity_kind"], item["entity_id"], item["metric"], item["unit"]) == (
        "workload",
        "web",
        "requests",
        "count",
    )
    zipped = gzip.compress(_request().SerializeToString())  # type: ignore[attr-defined]
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", **bearer(keys["ingest"])}
    assert client.post("/v1/metrics", content=zipped, headers=headers).status_code == 200
    assert counts(database) == (5, 6)


def test_undecodable_bodies_are_400(client: httpx.Client, database: Database, keys: dict[str, str]) -> None:
    proto = {"Content-Type": "application/x-protobuf", **bearer(keys["ingest"])}
    answer = client.post("/v1/metrics", content=b"\xff\xff\xff", headers=proto)
    assert answer.status_code == 400 and "OTLP" in answer.json()["error"]["message"]
    json_headers = {"Content-Type": "application/json", **bearer(keys["ingest"])}
    assert (
        client.post("/v1/metrics", content=b'{"resourceMetrics": 3}', headers=json_headers).status_code == 400
    )
    bad_gzip = client.post("/v1/metrics", content=b"nope", headers={**proto, "Content-Encoding": "gzip"})
    assert bad_gzip.status_code == 400
    text = client.post("/v1/metrics", content=b"x", headers={**proto, "Content-Type": "text/plain"})
    assert text.status_code == 415
    assert counts(database) == (0, 0)
