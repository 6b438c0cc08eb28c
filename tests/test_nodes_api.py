"""Node events and causal mitigation through real HTTP on both backends: events are stored once (resends
are no-ops, a bad bulk import stores nothing), the causal model trains from history with known outcomes,
recommendations fall back to the legacy rule without a model, hard faults are overridden, the
out-of-service cap holds, and an applied mitigation's outcome becomes training data."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from policies.mitigation_synthetic import generate
from service.db import Database
from tests.helpers import T0, bearer


@pytest.fixture
def keys(make_key: Callable[..., str]) -> dict[str, dict[str, str]]:
    return {
        scope: bearer(make_key(scope, name=f"{scope}-key"))
        for scope in ("ingest", "read", "operate", "admin")
    }


def _history(count: int, seed: int = 0) -> list[dict[str, Any]]:
    data = generate(count, seed=seed)
    return [
        {
            "node": f"n{i % 50}",
            "cluster": "west",
            "ts": T0 + 60 * i,
            "kind": r.kind,
            "severity": r.severity,
            "signals": r.signals,
            "context": r.context,
            "action_taken": r.action,
            "downtime_minutes": r.downtime_minutes,
        }
        for i, r in enumerate(data.records)
    ]


def test_events_are_stored_once_and_bad_imports_store_nothing(
    client: httpx.Client, database: Database, keys: dict[str, dict[str, str]]
) -> None:
    event = {
        "cluster": "west",
        "ts": T0,
        "kind": "ecc_errors",
        "signals": {"ecc_errors": 12},
        "context": {"age_days": 300},
    }
    first = client.post("/v1/nodes/n1/events", json=event, headers=keys["ingest"])
    assert first.status_code == 201, first.text
    again = client.post("/v1/nodes/n1/events", json=event, headers=keys["ingest"])
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    listed = client.get("/v1/nodes/n1/events", headers=keys["read"]).json()
    assert [e["kind"] for e in listed] == ["ecc_errors"]

    history = _history(5)
    history[3]["signals"] = {"ecc_errors": "many"}
    bad = client.post("/v1/node-events", json={"events": history}, headers=keys["ingest"])
    assert bad.status_code == 422 and "events" in bad.text
    future = {**event, "ts": T0 + 10**9}
    assert client.post("/v1/nodes/n1/events", json=future, headers=keys["ingest"]).status_code == 422
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM node_events")).scalar_one() == 1


def test_without_a_model_the_legacy_rule_answers_and_says_why(
    client: httpx.Client, keys: dict[str, dict[str, str]]
) -> None:
    event = {"kind": "ecc_errors", "severity": "error", "signals": {"ecc_errors": 50, "temperature_c": 80}}
    client.put("/v1/nodes/n1", json={"cluster": "west"}, headers=keys["admin"])
    answer = client.post(
        "/v1/recommendations/mitigation", json={"node": "n1", "event": event}, headers=keys["operate"]
    )
    assert answer.status_code == 201, answer.text
    decision = answer.json()
    assert decision["kind"] == "mitigation" and decision["policy"] == "mitigation_causal"
    assert decision["explanation"]["fallback_reason"]
    assert decision["params"]["event_id"] >= 1


def test_train_recommend_cap_and_outcome_feedback(
    client: httpx.Client, database: Database, keys: dict[str, dict[str, str]]
) -> None:
    too_few = client.post("/v1/models/mitigation/train", json={"n_estimators": 24}, headers=keys["operate"])
    assert too_few.status_code == 422 and "needs at least" in too_few.json()["error"]["message"]
    history = _history(1500)
    imported = client.post("/v1/node-events", json={"events": history}, headers=keys["ingest"])
    assert imported.status_code == 200 and imported.json() == {"created": 1500, "duplicates": 0}
    assert (
        client.post("/v1/node-events", json={"events": history[:10]}, headers=keys["ingest"]).json()[
            "duplicates"
        ]
        == 10
    )
    trained = client.post(
        "/v1/models/mitigation/train", json={"n_estimators": 24, "min_events": 200}, headers=keys["operate"]
    )
    assert trained.status_code == 201, trained.text
    model = trained.json()
    assert model["kind"] == "policy" and model["metrics"]["n_events"] > 1000

    hard = {"kind": "gpu_fell_off_bus", "severity": "critical", "signals": {"xid_79": 1}}
    forced = client.post(
        "/v1/recommendations/mitigation", json={"node": "n1", "event": hard}, headers=keys["operate"]
    )
    assert forced.status_code == 201, forced.text
    assert forced.json()["action"] == "drain_and_repair"
    assert any(g["name"] == "hard_fault_override" for g in forced.json()["explanation"]["guardrails"])

    # a learnt decision on a typical event carries its effect interval and model reference
    typical = {k: history[7][k] for k in ("kind", "severity", "signals", "context")}
    learnt = client.post(
        "/v1/recommendations/mitigation", json={"node": "n2", "event": typical}, headers=keys["operate"]
    ).json()
    assert learnt["explanation"]["details"]["model"]["id"] == model["id"]
    assert learnt["explanation"]["candidates"]

    # the cap: with two nodes already out of service, nothing else may be taken out
    for node in ("n10", "n11"):
        client.put(
            f"/v1/nodes/{node}", json={"cluster": "west", "status": "out_of_service"}, headers=keys["admin"]
        )
    capped = client.post(
        "/v1/recommendations/mitigation", json={"node": "n3", "event": typical}, headers=keys["operate"]
    ).json()
    assert capped["params"]["takes_out_of_service"] is False

    # applying a mitigation and reporting its downtime completes the event (training data)
    decision_id = forced.json()["id"]
    assert client.post(f"/v1/decisions/{decision_id}/approve", headers=keys["operate"]).status_code == 200
    assert client.post(f"/v1/decisions/{decision_id}/apply", headers=keys["operate"]).status_code == 200
    with database.engine.connect() as connection:
        status = connection.execute(text("SELECT status FROM nodes WHERE name = 'n1'")).scalar_one()
    assert status == "out_of_service"
    done = client.post(
        f"/v1/decisions/{decision_id}/outcome", json={"downtime_minutes": 42.0}, headers=keys["operate"]
    )
    assert done.status_code == 201
    with database.engine.connect() as connection:
        row = connection.execute(
            text("SELECT action_taken, downtime_minutes FROM node_events WHERE id = :i"),
            {"i": forced.json()["params"]["event_id"]},
        ).one()
        status = connection.execute(text("SELECT status FROM nodes WHERE name = 'n1'")).scalar_one()
    assert tuple(row) == ("drain_and_repair", 42.0) and status == "healthy"


def test_mitigation_request_validation(client: httpx.Client, keys: dict[str, dict[str, str]]) -> None:
    client.put("/v1/nodes/n1", json={"cluster": "west"}, headers=keys["admin"])
    both_missing = client.post("/v1/recommendations/mitigation", json={"node": "n1"}, headers=keys["operate"])
    assert both_missing.status_code == 422 and "event_id" in both_missing.text
    unknown_event = client.post(
        "/v1/recommendations/mitigation", json={"node": "n1", "event_id": 999}, headers=keys["operate"]
    )
    assert unknown_event.status_code == 404
    unknown_node = client.post(
        "/v1/recommendations/mitigation", json={"node": "zz", "event": {"kind": "x"}}, headers=keys["operate"]
    )
    assert unknown_node.status_code == 404


def test_train_command(client: httpx.Client, migrated_url: str, keys: dict[str, dict[str, str]]) -> None:
    from tests.test_auth import run_cli

    refused = run_cli(migrated_url, "mitigation", "train", "--n-estimators", "24")
    assert refused.returncode == 2 and "needs at least" in refused.stderr
    client.post("/v1/node-events", json={"events": _history(600, seed=3)}, headers=keys["ingest"])
    trained = run_cli(migrated_url, "mitigation", "train", "--n-estimators", "24")
    assert trained.returncode == 0, trained.stderr
    model = json.loads(trained.stdout.splitlines()[-1])
    assert model["name"] == "mitigation_causal" and model["version"] == 1
