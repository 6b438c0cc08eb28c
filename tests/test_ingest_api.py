"""Ingest through real HTTP on both backends: round trips, safe retries, every bad input refused with
the series and sample named and the database unchanged, and concurrent writers losing nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from service.db import Database
from tests.helpers import T0, batch, bearer, counts, series, snapshot


@pytest.fixture
def ingest_headers(make_key: Callable[..., str]) -> dict[str, str]:
    return bearer(make_key("ingest"))


def test_ingest_then_query_round_trip(
    client: httpx.Client, database: Database, ingest_headers: dict[str, str], make_key: Callable[..., str]
) -> None:
    payload = batch(
        series(samples=[[T0 + 10 * i, 200.0 + i] for i in range(50)], labels={"gpu": "0"}),
        series("inference-api", "requests_per_second", "req/s", [[T0, 12.0]], kind="workload"),
    )
    answer = client.post("/v1/telemetry", json=payload, headers=ingest_headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"series": 2, "series_created": 2, "samples": 51, "accepted": 51, "duplicates": 0}

    read = bearer(make_key("read"))
    listing = client.get(
        "/v1/series", params={"metric": "gpu_power_watts", "label": "gpu=0"}, headers=read
    ).json()
    assert listing["total"] == 1
    found = listing["items"][0]
    assert (found["cluster"], found["entity_kind"], found["entity_id"], found["unit"]) == (
        "west",
        "node",
        "gpu-node-17",
        "W",
    )
    samples = client.get(f"/v1/series/{found['id']}/samples", headers=read).json()
    assert samples["step_seconds"] is None
    assert samples["mean"] == [200.0 + i for i in range(50)]
    assert samples["timestamps"][0] == "2024-11-16T18:00:00Z"
    entities = client.get("/v1/entities", params={"cluster": "west"}, headers=read).json()
    assert {(e["kind"], e["id"]) for e in entities["items"]} == {
        ("node", "gpu-node-17"),
        ("workload", "inference-api"),
    }


def test_resent_batch_is_a_no_op_reported_as_duplicates(
    client: httpx.Client, database: Database, ingest_headers: dict[str, str]
) -> None:
    payload = batch(series(samples=[[T0 + i, float(i)] for i in range(100)]))
    first = client.post("/v1/telemetry", json=payload, headers=ingest_headers).json()
    stored = counts(database)
    again = client.post("/v1/telemetry", json=payload, headers=ingest_headers).json()
    assert first["accepted"] == 100 and first["duplicates"] == 0
    assert again == {"series": 1, "series_created": 0, "samples": 100, "accepted": 0, "duplicates": 100}
    assert counts(database) == stored == (1, 100)
    partly = batch(series(samples=[[T0 + i, float(i)] for i in range(50, 150)]))
    overlap = client.post("/v1/telemetry", json=partly, headers=ingest_headers).json()
    assert (overlap["accepted"], overlap["duplicates"]) == (50, 50)
    assert counts(database) == (1, 150)


def test_rfc3339_timestamps_are_accepted(
    client: httpx.Client, database: Database, ingest_headers: dict[str, str], make_key: Callable[..., str]
) -> None:
    stamps = [["2024-11-16T18:00:00Z", 1.0], ["2024-11-16T19:00:01+01:00", 2.0], [T0 + 2, 3.0]]
    answer = client.post("/v1/telemetry", json=batch(series(samples=stamps)), headers=ingest_headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 3
    stored = client.get("/v1/series/1/samples", headers=bearer(make_key("read"))).json()
    assert stored["timestamps"] == ["2024-11-16T18:00:00Z", "2024-11-16T18:00:01Z", "2024-11-16T18:00:02Z"]


def test_same_instant_in_two_notations_is_a_repeat(
    client: httpx.Client, database: Database, ingest_headers: dict[str, str]
) -> None:
    payload = batch(series(samples=[["2024-11-16T18:00:00Z", 1.0], [T0, 2.0]]))
    answer = client.post("/v1/telemetry", json=payload, headers=ingest_headers)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["sample"] == 1


def _good() -> dict[str, Any]:
    return series("node-a", samples=[[T0, 1.0], [T0 + 1, 2.0]])


BAD_BATCHES: list[tuple[str, Any, int, int | None, int | None]] = [
    # (case, body, status, series index, sample index)
    ("nan", batch(_good(), series(samples=[[T0, 1.0], [T0 + 1, float("nan")]])), 422, 1, 1),
    ("infinity", batch(series(samples=[[T0, float("inf")]])), 422, 0, 0),
    ("string value", batch(series(samples=[[T0, 1.0], [T0 + 1, "high"]])), 422, 0, 1),
    ("boolean value", batch(series(samples=[[T0, True]])), 422, 0, 0),
    ("null value", batch(series(samples=[[T0, None]])), 422, 0, 0),
    ("pair too short", batch(series(samples=[[T0, 1.0], [T0 + 1]])), 422, 0, 1),
    ("timestamp object", batch(series(samples=[[{"t": 1}, 1.0]])), 422, 0, 0),
    ("far future", batch(series(samples=[[T0, 1.0], [time.time() + 3600, 1.0]])), 422, 0, 1),
    ("milliseconds", batch(series(samples=[[T0 * 1000, 1.0]])), 422, 0, 0),
    ("before 1970", batch(series(samples=[[-1, 1.0]])), 422, 0, 0),
    ("naive RFC 3339", batch(series(samples=[["2024-11-16T18:00:00", 1.0]])), 422, 0, 0),
    ("negative watts", batch(series(samples=[[T0, 5.0], [T0 + 1, -3.0]])), 422, 0, 1),
    ("unknown unit", batch(_good(), series(unit="furlongs")), 422, 1, None),
    ("unknown entity kind", batch(series() | {"entity": {"kind": "pod", "id": "p"}}), 422, 0, None),
    ("bad metric name", batch(series(metric="gpu power")), 422, 0, None),
    ("empty samples", batch(series(samples=[])), 422, 0, None),
    ("repeated timestamp", batch(series(samples=[[T0, 1.0], [T0 + 1, 1.0], [T0, 2.0]])), 422, 0, 2),
    ("repeated series", batch(_good(), _good()), 422, 1, None),
    ("unknown field", batch(series() | {"colour": "red"}), 422, 0, None),
    ("empty batch", {"series": []}, 422, None, None),
    ("not a batch", [1, 2, 3], 422, None, None),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "series_index", "sample_index"), BAD_BATCHES, ids=[b[0] for b in BAD_BATCHES]
)
def test_bad_input_is_refused_and_nothing_is_stored(
    client: httpx.Client, database: Database, ingest_headers: dict[str, str],
    case: str, body: Any, status: int, series_index: int | None, sample_index: int | None,
) -> None:  # fmt: skip
    client.post("/v1/telemetry", json=batch(series("existing", samples=[[T0, 1.0]])), headers=ingest_headers)
    before = snapshot(database)
    answer = client.post("/v1/telemetry", content=json.dumps(body), headers=ingest_headers)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["message"]
    if series_index is not None:
        assert error["details"][0]["series"] == series_index, error
        assert f"series[{series_index}]" in error["message"]
    if sample_index is not None:
        assert error["details"][0]["sample"] == sample_index, error
        assert f"sample[{sample_index}]" in error["message"]
    assert snapshot(database) == before


@pytest.mark.parametrize(
    "body", [b"{not json", b"", b'{"series": [', "\ud800".encode("utf-8", "surrogatepass")]
)
def test_malformed_json_is_400(
    client: httpx.Client, database: Database, ingest_headers: dict[str, str], body: bytes
) -> None:
    answer = client.post(
        "/v1/telemetry", content=body, headers=ingest_headers | {"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "malformed_request"
    assert counts(database) == (0, 0)


def test_unit_must_match_the_stored_series(
    client: httpx.Client, database: Database, ingest_headers: dict[str, str]
) -> None:
    client.post("/v1/telemetry", json=batch(series(unit="W")), headers=ingest_headers)
    before = snapshot(database)
    other = series("node-new", samples=[[T0, 1.0]])
    answer = client.post(
        "/v1/telemetry", json=batch(other, series(unit="kW", samples=[[T0 + 5, 0.3]])), headers=ingest_headers
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["series"] == 1
    assert "W" in answer.json()["error"]["message"]
    assert snapshot(database) == before  # the new series of the same batch was not created either


def test_oversized_batch_is_413_and_stores_nothing(
    client: httpx.Client, database: Database, ingest_headers: dict[str, str]
) -> None:
    too_many = batch(series(samples=[[T0 + i, 1.0] for i in range(100_001)]))
    answer = client.post("/v1/telemetry", json=too_many, headers=ingest_headers)
    assert answer.status_code == 413
    assert "100000" in answer.json()["error"]["message"]
    assert counts(database) == (0, 0)
    exactly = batch(series(samples=[[T0 + i, 1.0] for i in range(100_000)]))
    assert client.post("/v1/telemetry", json=exactly, headers=ingest_headers).json()["accepted"] == 100_000


def test_concurrent_clients_lose_and_duplicate_nothing(
    live_server: Any, database: Database, ingest_headers: dict[str, str]
) -> None:
    """Six clients send overlapping batches (shared series, retried batches); every sample lands once."""
    expected: set[tuple[str, int]] = set()
    plans: list[list[dict[str, Any]]] = []
    for client_no in range(6):
        batches = []
        for round_no in range(8):
            names = [f"shared-{k}" for k in range(5)] + [f"own-{client_no}-{round_no % 3}"]
            base = T0 + round_no * 100
            items = [series(name, samples=[[base + i, float(i)] for i in range(100)]) for name in names]
            for name in names:
                expected.update((name, base + i) for i in range(100))
            batches.append(batch(*items))
        plans.append(batches + batches[:3])  # the first three are retried
    errors: list[str] = []

    def run(plan: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=live_server.url, timeout=120) as http:
            for body in plan:
                answer = http.post("/v1/telemetry", json=body, headers=ingest_headers)
                if answer.status_code != 200:
                    errors.append(answer.text)

    threads = [threading.Thread(target=run, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    n_series, n_samples = counts(database)
    assert n_series == len({name for name, _ in expected})
    assert n_samples == len(expected)
