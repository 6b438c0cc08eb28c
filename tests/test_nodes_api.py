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
    # the serving model is cached per process: a retrain (by any worker) serves from the next request on
    again = client.post(
        "/v1/models/mitigation/train", json={"learners": ["t_learner"], "seed": 3}, headers=keys["operate"]
    ).json()
    assert again["version"] == model["version"] + 1
    assert again["params"]["artifact_token"] != model["params"]["artifact_token"]
    served = client.post(
        "/v1/recommendations/mitigation", json={"node": "n2", "event": typical}, headers=keys["operate"]
    ).json()["explanation"]["details"]
    assert served["model"] == {"id": again["id"], "version": again["version"]}
    assert served["learner"] in (None, "t_learner")

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


def _one_fleet_event(i: int, action: str, downtime: float) -> dict[str, Any]:
    return {
        "node": f"m{i % 20}", "cluster": "east", "ts": T0 + 30 * i, "kind": "link_flap",
        "signals": {"flaps": float(i % 7), "crc": float(i % 13)}, "action_taken": action,
        "downtime_minutes": downtime,
    }  # fmt: skip


def test_bulk_import_counts_resends_and_repeats_within_the_batch(
    client: httpx.Client, database: Database, keys: dict[str, dict[str, str]]
) -> None:
    events = [_one_fleet_event(i, "observe", 1.0) for i in range(300)]
    first = client.post("/v1/node-events", json={"events": events}, headers=keys["ingest"])
    assert first.json() == {"created": 300, "duplicates": 0}
    again = events[:100] + [_one_fleet_event(i, "observe", 1.0) for i in range(300, 350)] + events[:5]
    second = client.post("/v1/node-events", json={"events": again}, headers=keys["ingest"])
    assert second.json() == {"created": 50, "duplicates": 105}
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM node_events")).scalar_one() == 350
        assert connection.execute(text("SELECT count(*) FROM nodes")).scalar_one() == 20
    listed = client.get("/v1/nodes/m3/events", params={"limit": 1000}, headers=keys["read"]).json()
    assert len(listed) == len([i for i in range(350) if i % 20 == 3])


def test_a_history_with_one_action_is_refused_with_the_reason(
    client: httpx.Client, keys: dict[str, dict[str, str]]
) -> None:
    events = [_one_fleet_event(i, "observe", float(i % 5)) for i in range(400)]
    client.post("/v1/node-events", json={"events": events}, headers=keys["ingest"])
    refused = client.post("/v1/models/mitigation/train", json={"n_estimators": 8}, headers=keys["operate"])
    assert refused.status_code == 422 and "at least two actions" in refused.json()["error"]["message"]
    assert "observe" in refused.json()["error"]["message"]


def test_rule_training_savings_and_bad_inputs(
    client: httpx.Client, keys: dict[str, dict[str, str]], make_key: Callable[..., str]
) -> None:
    shown = client.get("/v1/models/mitigation/rule", headers=keys["read"]).json()
    assert shown["source"] == "learned_practice" and shown["version"] is None
    assert shown["overrides"]["kinds"]["gpu_fell_off_bus"] == "drain_and_repair"
    no_default = {"clauses": [{"when": [{"signal": "ecc_errors", "value": 5}], "action": "reboot"}]}
    bad = client.put("/v1/models/mitigation/rule", json=no_default, headers=keys["admin"])
    assert bad.status_code == 422 and "default" in bad.text

    client.post("/v1/node-events", json={"events": _history(1500)}, headers=keys["ingest"])
    trained = client.post(
        "/v1/models/mitigation/train",
        json={"n_estimators": 24, "nuisance_estimators": 40},
        headers=keys["operate"],
    )
    assert trained.status_code == 201, trained.text
    metrics = trained.json()["metrics"]
    assert metrics["selection"]["learner"] in {"t_learner", "x_learner", "dr_learner", "causal_forest"}
    assert set(metrics["selection"]["learners"]) == {"t_learner", "x_learner", "dr_learner", "causal_forest"}
    assert "against your current practice" in metrics["savings"]["statement"]
    listed = client.get("/v1/models", headers=keys["read"]).json()
    mine = next(
        m
        for m in (listed if isinstance(listed, list) else listed["items"])
        if m["name"] == "mitigation_causal"
    )
    assert mine["metrics"]["savings"]["statement"] == metrics["savings"]["statement"]
    from tests.dashboard.conftest import login

    assert login(client, make_key("read", name="viewer")).status_code in (200, 303)
    page = client.get("/nodes")
    assert page.status_code == 200 and metrics["savings"]["statement"] in page.text

    typical = {k: _history(3, seed=9)[1][k] for k in ("kind", "severity", "signals", "context")}
    learnt = client.post(
        "/v1/recommendations/mitigation", json={"node": "n2", "event": typical}, headers=keys["operate"]
    ).json()
    assert learnt["explanation"]["details"]["fallback_policy"]["source"] == "learned_practice"

    # signals the model never saw, and none of those it relies on: the practice cannot be scored either
    odd = {"kind": "ecc_errors", "signals": {"fan_rpm": 9000}}
    answered = client.post(
        "/v1/recommendations/mitigation", json={"node": "n2", "event": odd}, headers=keys["operate"]
    )
    assert answered.status_code == 201, answered.text
    assert answered.json()["explanation"]["details"]["fallback"] == "missing_signals"
    assert "ecc_errors" in answered.json()["explanation"]["fallback_reason"]

    # a declared rule naming an action the history never took: a warning, a stated fallback, a 422 to train
    rule = {
        "clauses": [{"when": [{"signal": "ecc_errors", "op": ">=", "value": 100}], "action": "call_vendor"}],
        "default": "observe",
        "overrides": {"kinds": {"gpu_fell_off_bus": "drain_and_repair"}},
    }
    put = client.put("/v1/models/mitigation/rule", json=rule, headers=keys["admin"])
    assert put.status_code == 200 and put.json()["source"] == "declared_rule" and put.json()["version"] == 1
    assert "call_vendor" in put.json()["warnings"][0]
    loud = {**typical, "signals": {**typical["signals"], "ecc_errors": 500}}
    vendor = client.post(
        "/v1/recommendations/mitigation", json={"node": "n2", "event": loud}, headers=keys["operate"]
    ).json()
    assert (
        vendor["action"] == "call_vendor"
        and vendor["explanation"]["details"]["fallback"] == "unknown_fallback_action"
    )
    assert vendor["explanation"]["details"]["fallback_policy"]["source"] == "declared_rule"
    assert "rule_changed_since_training" in vendor["explanation"]["details"]
    refused = client.post("/v1/models/mitigation/train", json={"n_estimators": 8}, headers=keys["operate"])
    assert refused.status_code == 422 and "call_vendor" in refused.json()["error"]["message"]

    # critical severity is no longer overridden (the overrides were replaced), and clearing restores them
    critical = {**typical, "severity": "critical"}
    free = client.post(
        "/v1/recommendations/mitigation", json={"node": "n2", "event": critical}, headers=keys["operate"]
    ).json()
    assert not any(g["name"] == "hard_fault_override" for g in free["explanation"]["guardrails"])
    cleared = client.delete("/v1/models/mitigation/rule", headers=keys["admin"]).json()
    assert cleared["source"] == "learned_practice" and cleared["version"] == 2
    assert cleared["overrides"]["severities"] == {"critical": "drain_and_repair"}


def test_rule_command(migrated_url: str, tmp_path: Any) -> None:
    from tests.test_auth import run_cli

    path = tmp_path / "rule.json"
    path.write_text(json.dumps({"clauses": [{"when": [{"signal": "flaps", "value": 3}], "action": "reset"}],
                                "default": "observe"}))  # fmt: skip
    declared = run_cli(migrated_url, "mitigation", "rule", "set", str(path))
    assert declared.returncode == 0, declared.stderr
    stored = json.loads(declared.stdout.splitlines()[-1])
    assert stored["rule"]["clauses"][0]["action"] == "reset"
    shown = json.loads(run_cli(migrated_url, "mitigation", "rule", "show").stdout.splitlines()[-1])
    assert shown["source"] == "declared_rule" and shown["version"] == stored["version"]
    path.write_text(json.dumps({"clauses": [{"when": [], "action": "x"}], "default": "y"}))
    assert run_cli(migrated_url, "mitigation", "rule", "set", str(path)).returncode == 2
    cleared = json.loads(run_cli(migrated_url, "mitigation", "rule", "clear").stdout.splitlines()[-1])
    assert cleared["source"] == "learned_practice"
