"""Scaling recommendations and the decision lifecycle through real HTTP on both backends: a trained
forecast drives the Bayesian policy, the answer is recorded by the workload's mode with its evidence,
operators approve / reject (actor recorded), outcomes feed ε, and modelling problems fall back, never 500."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np
import pytest
from sqlalchemy import text

from service.db import Database
from tests.helpers import T0, batch, bearer

STEP = 300


@pytest.fixture
def keys(make_key: Callable[..., str]) -> dict[str, dict[str, str]]:
    return {
        scope: bearer(make_key(scope, name=f"{scope}-key"))
        for scope in ("ingest", "read", "operate", "admin")
    }


def _load(count: int) -> list[list[float]]:
    t = T0 + STEP * np.arange(count)
    rng = np.random.default_rng(1)
    values = 100 + 40 * np.sin(2 * np.pi * (t - T0) / 86400) + rng.normal(0, 3, count)
    return [[int(a), round(float(b), 3)] for a, b in zip(t, values, strict=True)]


def _configure(client: httpx.Client, keys: dict[str, dict[str, str]], **body: object) -> httpx.Response:
    payload = {
        "cluster": "west",
        "replicas": 10,
        "replica_capacity": 10.0,
        "capacity_metric": "requests_per_second",
        "max_replicas": 40,
        "mode": "approve",
    } | body
    return client.put("/v1/workloads/web", json=payload, headers=keys["admin"])


@pytest.fixture
def workload(client: httpx.Client, keys: dict[str, dict[str, str]]) -> None:
    item = {
        "entity": {"kind": "workload", "id": "web", "cluster": "west"},
        "metric": "requests_per_second",
        "unit": "req/s",
        "samples": _load(3 * 288),
    }
    assert client.post("/v1/telemetry", json=batch(item), headers=keys["ingest"]).status_code == 200
    answer = _configure(client, keys)
    assert answer.status_code == 200, answer.text
    assert answer.json()["replica_capacity"] == 10.0


def _recommend(client: httpx.Client, keys: dict[str, dict[str, str]], **body: object) -> httpx.Response:
    return client.post(
        "/v1/recommendations/scaling", json={"workload": "web"} | body, headers=keys["operate"]
    )


def test_without_a_model_the_policy_falls_back_and_says_why(
    client: httpx.Client, keys: dict[str, dict[str, str]], workload: None
) -> None:
    answer = _recommend(client, keys)
    assert answer.status_code == 201, answer.text
    decision = answer.json()
    reason = decision["explanation"]["fallback_reason"]
    assert "no trained forecaster" in reason and "foresight forecast train" in reason
    assert decision["params"]["replicas"] >= 10  # the fallback never scales in
    assert decision["status"] == "proposed" and decision["mode"] == "approve"


def test_forecast_driven_decision_with_evidence_and_lifecycle(
    client: httpx.Client, database: Database, keys: dict[str, dict[str, str]], workload: None
) -> None:
    trained = client.post(
        "/v1/models/train",
        json={"model": "seasonal_naive", "entity_kind": "workload"},
        headers=keys["operate"],
    )
    assert trained.status_code == 201, trained.text
    answer = _recommend(client, keys, horizon=6)
    assert answer.status_code == 201, answer.text
    decision = answer.json()
    evidence = decision["explanation"]
    assert evidence["fallback_reason"] is None
    assert evidence["forecast"]["load"]["steps"] == 6
    chosen = [c for c in evidence["candidates"] if c["note"] == "chosen"]
    assert len(chosen) == 1 and chosen[0]["feasible"] and chosen[0]["risk"] <= 0.05
    # the last load is ~100 +- 40 at 8 req/s per replica: a sane count, within the bounds
    assert 8 <= decision["params"]["replicas"] <= 40
    assert decision["history"][0]["to_status"] == "proposed"

    # read-only keys may look but not approve
    assert client.post(f"/v1/decisions/{decision['id']}/approve", headers=keys["read"]).status_code == 403
    approved = client.post(
        f"/v1/decisions/{decision['id']}/approve", json={"note": "looks right"}, headers=keys["operate"]
    )
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved" and body["actor"].startswith("key:operate-key#")
    assert [h["to_status"] for h in body["history"]] == ["proposed", "approved"]
    assert body["history"][1]["note"] == "looks right"
    again = client.post(f"/v1/decisions/{decision['id']}/reject", headers=keys["operate"])
    assert again.status_code == 409 and "approved" in again.json()["error"]["message"]

    applied = client.post(f"/v1/decisions/{decision['id']}/apply", headers=keys["operate"])
    assert applied.status_code == 200 and applied.json()["applied_at"]
    outcome = {"windows": 10, "violations": 1}
    first = client.post(f"/v1/decisions/{decision['id']}/outcome", json=outcome, headers=keys["operate"])
    assert first.status_code == 201, first.text
    resent = client.post(f"/v1/decisions/{decision['id']}/outcome", json=outcome, headers=keys["operate"])
    assert resent.status_code == 200  # a retry is not counted twice
    different = client.post(
        f"/v1/decisions/{decision['id']}/outcome",
        json={"windows": 10, "violations": 5},
        headers=keys["operate"],
    )
    assert different.status_code == 409
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM outcomes")).scalar_one() == 1

    log = client.get(
        "/v1/decisions", params={"status": "applied", "target": "web"}, headers=keys["read"]
    ).json()
    assert log["total"] == 1 and log["items"][0]["outcome"]["violations"] == 1
    assert (
        client.get("/v1/decisions", params={"status": "proposed"}, headers=keys["read"]).json()["total"] == 0
    )


def test_outcomes_with_many_violations_tighten_epsilon(
    client: httpx.Client, keys: dict[str, dict[str, str]], workload: None
) -> None:
    first = _recommend(client, keys).json()
    assert first["explanation"]["fallback_reason"]  # no model yet: reactive fallback
    client.post(f"/v1/decisions/{first['id']}/approve", headers=keys["operate"])
    client.post(f"/v1/decisions/{first['id']}/apply", headers=keys["operate"])
    report = client.post(
        f"/v1/decisions/{first['id']}/outcome",
        json={"windows": 100, "violations": 40},
        headers=keys["operate"],
    )
    assert report.status_code == 201
    client.post(
        "/v1/models/train",
        json={"model": "seasonal_naive", "entity_kind": "workload"},
        headers=keys["operate"],
    )
    later = _recommend(client, keys).json()
    details = later["explanation"]["details"]
    assert details["epsilon_used"] < 0.05  # below where the budget controller starts
    assert "tightened" in details["risk_adaptation"] and "late_fraction <= 1 %" in details["risk_adaptation"]
    expert = _recommend(client, keys, epsilon=0.2).json()["explanation"]["details"]  # ε stated: the override
    assert expert["epsilon_target"] == 0.2 and "tightened" in expert["risk_adaptation"]


def test_modes_shadow_and_auto(client: httpx.Client, keys: dict[str, dict[str, str]], workload: None) -> None:
    assert _configure(client, keys, mode="shadow").status_code == 200
    shadow = _recommend(client, keys).json()
    assert shadow["status"] == "proposed" and shadow["mode"] == "shadow"
    refused = client.post(f"/v1/decisions/{shadow['id']}/approve", headers=keys["operate"])
    assert refused.status_code == 409 and "shadow" in refused.json()["error"]["message"]
    assert _configure(client, keys, mode="auto").status_code == 200
    auto = _recommend(client, keys).json()
    assert auto["status"] == "applied" and auto["actor"] == "foresight:auto"
    assert [h["to_status"] for h in auto["history"]] == ["proposed", "applied"]


def test_bad_requests_are_clear(
    client: httpx.Client, keys: dict[str, dict[str, str]], workload: None
) -> None:
    missing = _recommend(client, keys, workload="nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    unknown = _recommend(client, keys, policy="magic")
    assert unknown.status_code == 422 and "bayesian_scaling" in unknown.json()["error"]["message"]
    assert _recommend(client, keys, epsilon=2).status_code == 422
    assert client.post("/v1/decisions/999/approve", headers=keys["operate"]).status_code == 404
    for slo, reason in (
        ({"objective": "p95_fun"}, "unknown metric"),
        ({"objective": "late_fraction", "max": 0}, "cannot be met"),
        ({"objective": "p99_latency", "max_seconds": 2, "windows": 1}, "cannot be promised"),
    ):
        refused = _configure(client, keys, slo=slo)
        assert refused.status_code == 422 and reason in refused.json()["error"]["message"], refused.text
    assert _configure(client, keys, slo={"objective": "p99_latency", "max_seconds": 2}).status_code == 200
    bad_bounds = _configure(client, keys, min_replicas=50, max_replicas=5)
    assert bad_bounds.status_code == 422 and "min_replicas" in bad_bounds.json()["error"]["message"]
    unconfigured = client.put("/v1/workloads/other", json={"cluster": "west"}, headers=keys["admin"])
    assert unconfigured.status_code == 200
    no_capacity = _recommend(client, keys, workload="other")
    assert no_capacity.status_code == 409 and "replica_capacity" in no_capacity.json()["error"]["message"]


@pytest.mark.parametrize("policy", ["hpa", "static_peak", "vpa_percentile", "holt_winters_hpa"])
def test_baselines_are_served_too(
    client: httpx.Client, keys: dict[str, dict[str, str]], workload: None, policy: str
) -> None:
    answer = _recommend(client, keys, policy=policy)
    assert answer.status_code == 201, answer.text
    assert answer.json()["policy"] == policy and answer.json()["params"]["replicas"] >= 1


def test_a_queue_backlog_series_buys_replicas_to_drain_it(
    client: httpx.Client, keys: dict[str, dict[str, str]], workload: None
) -> None:
    """A workload that exports `queue_backlog` (requests waiting) gets the replicas that drain it over
    the forecast window on top of the arrivals; an old backlog sample is ignored and the answer says so."""
    trained = client.post(
        "/v1/models/train",
        json={"model": "seasonal_naive", "entity_kind": "workload"},
        headers=keys["operate"],
    )
    assert trained.status_code == 201, trained.text
    plain = _recommend(client, keys, horizon=6).json()
    assert plain["explanation"]["details"]["backlog"] == 0.0
    last = T0 + STEP * (3 * 288 - 1)

    def queue(ts: int, value: float) -> None:
        item = {"entity": {"kind": "workload", "id": "web", "cluster": "west"},
                "metric": "queue_backlog", "unit": "requests", "samples": [[ts, value]]}  # fmt: skip
        assert client.post("/v1/telemetry", json=batch(item), headers=keys["ingest"]).status_code == 200

    queue(last - 3600, 72_000.0)  # an hour older than the load: not today's queue
    stale = _recommend(client, keys, horizon=6).json()
    assert stale["explanation"]["details"]["backlog"] == 0.0
    assert "queue_backlog" in " ".join(stale["explanation"]["details"]["notes"])
    queue(last, 72_000.0)  # 72,000 requests over 6 x 300 s: 40 req/s more, 5 replicas at 8 req/s
    draining = _recommend(client, keys, horizon=6).json()
    details = draining["explanation"]["details"]
    assert details["backlog"] == 72_000.0 and details["backlog_rate"] == pytest.approx(40.0)
    assert details["wanted_replicas"] >= plain["explanation"]["details"]["wanted_replicas"] + 5
