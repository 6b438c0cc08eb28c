"""Prometheus remote-write receiver over real HTTP on both backends: label mapping (node-exporter,
kube-state-metrics, cAdvisor, DCGM), idempotent retries, whole-or-nothing, the 4xx/5xx choices Prometheus
relies on, samples that can never be stored, counters as rates."""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx
import pytest

from service.db import Database
from service.integrations import protos
from tests.helpers import T0, batch, bearer, counts, series, snapshot
from tests.integrations.helpers import (
    SNAPPY,
    eventually,
    post_write,
    samples_of,
    stored_series,
    write_request,
)

MS = 1000


def _stale_marker() -> float:
    import struct

    return float(struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0])


@pytest.fixture
def keys(make_key: Callable[..., str]) -> dict[str, str]:
    return {"ingest": make_key("ingest"), "read": make_key("read")}


def test_exporters_are_mapped_to_entities_units_and_labels(
    client: httpx.Client, keys: dict[str, str]
) -> None:
    request = write_request(
        (
            {"__name__": "node_load1", "job": "node", "instance": "10.0.0.7:9100", "cluster": "west"},
            [(T0 * MS, 1.5), (T0 * MS + 15_000, 1.75)],
        ),
        (
            {
                "__name__": "node_cpu_seconds_total",
                "job": "node",
                "instance": "10.0.0.7:9100",
                "cluster": "west",
                "cpu": "0",
                "mode": "idle",
            },
            [(T0 * MS, 100.0)],
        ),
        (
            {
                "__name__": "DCGM_FI_DEV_POWER_USAGE",
                "Hostname": "gpu-node-17",
                "gpu": "0",
                "UUID": "GPU-1",
                "modelName": "A100",
                "instance": "dcgm:9400",
                "job": "dcgm",
                "cluster": "west",
            },
            [(T0 * MS, 287.5)],
        ),
        (
            {
                "__name__": "kube_deployment_status_replicas",
                "deployment": "web",
                "namespace": "shop",
                "instance": "ksm-0:8080",
                "job": "kube-state-metrics",
                "cluster": "west",
            },
            [(T0 * MS, 3.0)],
        ),
        (
            {
                "__name__": "container_memory_working_set_bytes",
                "pod": "web-7d9f8c6b5-x2x9q",
                "namespace": "shop",
                "container": "app",
                "id": "/kubepods/abc",
                "image": "web:1",
                "name": "k8s_app",
                "instance": "n1:10250",
                "job": "cadvisor",
                "cluster": "west",
            },
            [(T0 * MS, 2.5e8)],
        ),
        (
            {
                "__name__": "kube_node_status_capacity",
                "node": "gpu-node-17",
                "resource": "cpu",
                "unit": "core",
                "job": "kube-state-metrics",
                "instance": "ksm-0:8080",
                "cluster": "west",
            },
            [(T0 * MS, 64.0)],
        ),
    )
    answer = post_write(client, keys["ingest"], request)
    assert answer.status_code == 200, answer.text
    assert answer.json() | {"dropped": {}} == answer.json()
    assert answer.json()["accepted"] == 7 and answer.json()["series_created"] == 6
    found = {s["metric"]: s for s in stored_series(client, keys["read"], cluster="west")}
    expect = {
        "node_load1": ("node", "10.0.0.7", "1", {"job": "node"}),
        "node_cpu_seconds_total": ("node", "10.0.0.7", "s", {"job": "node", "cpu": "0", "mode": "idle"}),
        # canonical inputs (service/integrations/canonical.py): the names the policies read
        "gpu_power_watts": (
            "node",
            "gpu-node-17",
            "W",
            {"gpu": "0", "job": "dcgm", "instance": "dcgm:9400"},
        ),
        "replicas": ("workload", "web", "replicas", {"namespace": "shop"}),
        "memory_usage_bytes": (
            "workload",
            "web",
            "B",
            {"namespace": "shop", "container": "app", "pod": "web-7d9f8c6b5-x2x9q"},
        ),
        "kube_node_status_capacity": ("node", "gpu-node-17", "1", {"resource": "cpu", "unit": "core"}),
    }
    for metric, (kind, entity, unit, labels) in expect.items():
        got = found[metric]
        assert (got["entity_kind"], got["entity_id"], got["unit"], got["labels"]) == (
            kind,
            entity,
            unit,
            labels,
        )
    assert samples_of(client, keys["read"], found["node_load1"]["id"]) == [(T0, 1.5), (T0 + 15, 1.75)]


def test_retry_is_not_counted_twice_and_json_path_shares_series(
    client: httpx.Client, database: Database, keys: dict[str, str]
) -> None:
    request = write_request(
        (
            {"__name__": "gpu_power_watts", "instance": "gpu-node-17:9100", "cluster": "west", "gpu": "0"},
            [(T0 * MS + i * 60_000, 280.0 + i) for i in range(50)],
        ),
    )
    first = post_write(client, keys["ingest"], request)
    assert first.status_code == 200 and first.json()["accepted"] == 50
    again = post_write(client, keys["ingest"], request)
    assert again.status_code == 200
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 50)
    assert counts(database) == (1, 50)
    # the JSON path names the same series: it lands in the one series, not a new one
    same = series("gpu-node-17", "gpu_power_watts", "W", [[T0 + 50 * 60, 330.0]], labels={"gpu": "0"})
    assert client.post("/v1/telemetry", json=batch(same), headers=bearer(keys["ingest"])).status_code == 200
    assert counts(database) == (1, 51)


def test_a_refused_batch_changes_nothing(
    client: httpx.Client, database: Database, keys: dict[str, str]
) -> None:
    # the series exists with unit W; a remote-write series mapping to it with another unit is refused whole
    stored = series("n1", "temperature_celsius", "W", [[T0, 1.0]])
    assert client.post("/v1/telemetry", json=batch(stored), headers=bearer(keys["ingest"])).status_code == 200
    before = snapshot(database)
    request = write_request(
        ({"__name__": "node_load1", "instance": "n2:9100", "cluster": "west"}, [(T0 * MS, 1.0)]),
        ({"__name__": "temperature_celsius", "instance": "n1:9100", "cluster": "west"}, [(T0 * MS, 1.0)]),
    )
    answer = post_write(client, keys["ingest"], request)
    assert answer.status_code == 422, answer.text
    assert (
        "temperature_celsius" in answer.json()["error"]["message"]
        and "unit" in answer.json()["error"]["message"]
    )
    assert snapshot(database) == before


def test_bad_requests_get_4xx_that_name_the_problem(
    client: httpx.Client, database: Database, keys: dict[str, str]
) -> None:
    headers = {**SNAPPY, **bearer(keys["ingest"])}
    good = write_request(({"__name__": "up", "instance": "a:1"}, [(T0 * MS, 1.0)]))
    not_snappy = client.post("/api/v1/write", content=b"\x10\xff\xff\xff", headers=headers)
    assert not_snappy.status_code == 400 and "snappy" in not_snappy.json()["error"]["message"]
    import cramjam

    not_proto = client.post(
        "/api/v1/write", content=bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff")), headers=headers
    )
    assert not_proto.status_code == 400 and "WriteRequest" in not_proto.json()["error"]["message"]
    nameless = write_request(({"job": "x"}, [(T0 * MS, 1.0)]))
    answer = post_write(client, keys["ingest"], nameless)
    assert answer.status_code == 400 and "timeseries[0]" in answer.json()["error"]["message"]
    gzip_body = client.post(
        "/api/v1/write", content=good.SerializeToString(), headers={**headers, "Content-Encoding": "gzip"}
    )
    assert gzip_body.status_code == 415
    v2 = client.post(
        "/api/v1/write",
        content=b"x",
        headers={**headers, "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"},
    )
    assert v2.status_code == 415 and "1.0" in v2.json()["error"]["message"]
    unauthenticated = client.post("/api/v1/write", content=b"x", headers=SNAPPY)
    assert unauthenticated.status_code == 401
    read_only = post_write(client, keys["read"], good)
    assert read_only.status_code == 403
    assert counts(database) == (0, 0)


def test_samples_that_can_never_be_stored_are_left_out_and_counted(
    client: httpx.Client, database: Database, keys: dict[str, str]
) -> None:
    request = write_request(
        (
            {"__name__": "node_memory_MemAvailable_bytes", "instance": "n1:9100"},
            [
                (T0 * MS, 1e9),
                (T0 * MS + 1000, _stale_marker()),
                (T0 * MS + 2000, math.inf),
                (T0 * MS + 3000, -5.0),
                (T0 * MS + 4000, 2e9),
            ],
        ),
        ({"__name__": "orphan_metric"}, [(T0 * MS, 1.0)]),
        ({"__name__": "node_time_seconds", "instance": "n1:9100"}, [(4_000_000_000_000, 1.0)]),
    )
    answer = post_write(client, keys["ingest"], request)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == 2
    assert body["dropped"] == {
        "future_timestamp": 1,
        "negative_value": 1,
        "no_entity": 1,
        "not_finite": 1,
        "stale_marker": 1,
    }
    assert counts(database) == (1, 2)
    counted = 'foresight_integration_dropped_samples_total{reason="stale_marker",source="remote_write"}'
    eventually(lambda: counted in client.get("/metrics").text, "the dropped-samples counter (after commit)")


def test_empty_and_metadata_only_requests_are_accepted(client: httpx.Client, keys: dict[str, str]) -> None:
    request = protos.WriteRequest()
    meta = request.metadata.add()
    meta.type, meta.metric_family_name, meta.help = protos.COUNTER_TYPE, "node_cpu_seconds_total", "CPU time"
    answer = post_write(client, keys["ingest"], request)
    assert answer.status_code == 200 and answer.json()["samples"] == 0


def test_counters_as_rates_across_requests_with_a_reset(
    client: httpx.Client, database: Database, keys: dict[str, str]
) -> None:
    labels = {"__name__": "node_network_receive_bytes_total", "instance": "n1:9100", "device": "eth0"}
    first = write_request((labels, [(T0 * MS, 1000.0), (T0 * MS + 10_000, 3000.0)]))
    second = write_request((labels, [(T0 * MS + 20_000, 4000.0), (T0 * MS + 30_000, 500.0)]))  # reset
    path = "/api/v1/write?counters=rate"
    assert post_write(client, keys["ingest"], first, path).json()["accepted"] == 3
    answer = post_write(client, keys["ingest"], second, path)
    assert answer.status_code == 200 and answer.json()["accepted"] == 4  # 2 raw + 2 rates
    assert post_write(client, keys["ingest"], second, path).json()["accepted"] == 0  # a retry: nothing new
    found = {s["metric"]: s for s in stored_series(client, keys["read"])}
    rate = found["node_network_receive_bytes:rate"]
    assert rate["unit"] == "B/s" and rate["labels"] == {"device": "eth0"}
    assert samples_of(client, keys["read"], rate["id"]) == [
        (T0 + 10, 200.0),
        (T0 + 20, 100.0),
        (T0 + 30, 50.0),
    ]
    assert counts(database) == (2, 7)
    plain = write_request((labels, [(T0 * MS + 40_000, 900.0)]))
    assert post_write(client, keys["ingest"], plain).json()["accepted"] == 1  # default: raw only


def test_too_many_samples_is_413(client: httpx.Client, keys: dict[str, str], database: Database) -> None:
    request = write_request(
        ({"__name__": "x", "instance": "a:1"}, [(T0 * MS + i, 1.0) for i in range(100_001)])
    )
    answer = post_write(client, keys["ingest"], request)
    assert answer.status_code == 413 and "max_samples_per_send" in answer.json()["error"]["message"]
    assert counts(database) == (0, 0)


def test_database_down_gives_503_with_retry_after(closed_port_server: str) -> None:
    request = write_request(({"__name__": "up", "instance": "a:1"}, [(T0 * MS, 1.0)]))
    with httpx.Client(base_url=closed_port_server, timeout=30) as http:
        answer = post_write(http, "fsk_000000000000_whatever", request)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "7"
