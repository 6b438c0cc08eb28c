"""Exports over real HTTP on both backends: the Prometheus exposition of forecasts and recommendations
(parsed with prometheus_client), and the KEDA metrics-api answer following only decisions let through."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import bearer


@pytest.fixture
def keys(make_key: Callable[..., str]) -> dict[str, dict[str, str]]:
    return {scope: bearer(make_key(scope)) for scope in ("ingest", "read", "operate", "admin")}


@pytest.fixture
def web(client: httpx.Client, keys: dict[str, dict[str, str]]) -> None:
    t = np.arange(3 * 288) * 300 + int(time.time()) - 3 * 86400
    values = 100 + 40 * np.sin(2 * np.pi * t / 86400)
    item = {
        "entity": {"kind": "workload", "id": "web", "cluster": "west"},
        "metric": "requests_per_second",
        "unit": "req/s",
        "labels": {"tier": "front"},
        "samples": [[int(a), round(float(b), 3)] for a, b in zip(t, values, strict=True)],
    }
    assert client.post("/v1/telemetry", json={"series": [item]}, headers=keys["ingest"]).status_code == 200
    workload = {
        "cluster": "west",
        "replicas": 10,
        "replica_capacity": 10.0,
        "capacity_metric": "requests_per_second",
        "max_replicas": 40,
        "mode": "approve",
    }
    assert client.put("/v1/workloads/web", json=workload, headers=keys["admin"]).status_code == 200


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def test_export_has_forecast_quantiles_and_recommendations(
    client: httpx.Client, keys: dict[str, dict[str, str]], web: None
) -> None:
    empty = client.get("/v1/exports/prometheus", headers=keys["read"])
    assert empty.status_code == 200 and not [s for s in _samples(empty.text) if s[0] == "foresight_forecast"]
    trained = client.post(
        "/v1/models/train",
        json={"model": "seasonal_naive", "entity_kind": "workload"},
        headers=keys["operate"],
    )
    assert trained.status_code == 201, trained.text
    assert client.post(
        "/v1/recommendations/scaling", json={"workload": "web"}, headers=keys["operate"]
    ).is_success
    answer = client.get("/v1/exports/prometheus?horizon=4", headers=keys["read"])
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    samples = _samples(answer.text)
    bands = [(labels, value) for name, labels, value in samples if name == "foresight_forecast"]
    assert {labels["horizon"] for labels, _ in bands} == {"1", "2", "3", "4"}
    first = {labels["quantile"]: value for labels, value in bands if labels["horizon"] == "1"}
    assert first["0.1"] <= first["0.5"] <= first["0.9"]
    labels = next(labels for labels, _ in bands if labels["horizon"] == "1")
    assert {k: labels[k] for k in ("cluster", "entity", "metric", "tier", "ahead_seconds")} == {
        "cluster": "west",
        "entity": "web",
        "metric": "requests_per_second",
        "tier": "front",
        "ahead_seconds": "300",
    }
    replicas = [v for n, lab, v in samples if n == "foresight_recommendation" and lab["param"] == "replicas"]
    assert len(replicas) == 1 and 1 <= replicas[0] <= 40
    assert ("foresight_workload_replicas", {"cluster": "west", "workload": "web"}, 10.0) in samples
    assert client.get("/v1/exports/prometheus", headers=keys["ingest"]).status_code == 403


def test_keda_follows_decisions_let_through(
    client: httpx.Client, keys: dict[str, dict[str, str]], web: None
) -> None:
    answer = client.get("/v1/keda/workloads/web", headers=keys["read"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["replicas"], body["source"]) == (10, "workload")
    assert (
        body["target_metric"]["source"] == "observed" and body["target_metric"]["per_replica_target"] == 8.0
    )
    client.post(
        "/v1/models/train",
        json={"model": "seasonal_naive", "entity_kind": "workload"},
        headers=keys["operate"],
    )
    decision = client.post(
        "/v1/recommendations/scaling", json={"workload": "web"}, headers=keys["operate"]
    ).json()
    wanted = decision["params"]["replicas"]
    assert (
        client.get("/v1/keda/workloads/web", headers=keys["read"]).json()["source"] == "workload"
    )  # proposed
    proposed = client.get("/v1/keda/workloads/web?include_proposed=true", headers=keys["read"]).json()
    assert (proposed["replicas"], proposed["status"]) == (wanted, "proposed")
    assert client.post(f"/v1/decisions/{decision['id']}/approve", headers=keys["operate"]).status_code == 200
    approved = client.get("/v1/keda/workloads/web?cluster=west", headers=keys["read"]).json()
    assert (approved["replicas"], approved["source"], approved["decision_id"]) == (
        wanted,
        "decision",
        decision["id"],
    )
    metric = approved["target_metric"]
    assert metric["source"] == "forecast" and metric["quantile"] == 0.95 and metric["value"] > 0
    assert client.get("/v1/keda/workloads/nope", headers=keys["read"]).status_code == 404
