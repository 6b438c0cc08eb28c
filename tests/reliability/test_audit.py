"""Every path that changes a decision's status writes exactly one audit row (decision_events) with the
actor and a time; refused changes write none; the decision's status is always its last event's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from service.db import Database
from service.decisions import service as decisions
from tests.helpers import T0, batch, bearer


def events(database: Database, decision_id: int) -> list[Any]:
    with database.engine.connect() as connection:
        return list(connection.execute(
            text("SELECT actor, from_status, to_status, ts FROM decision_events "
                 "WHERE decision_id = :d ORDER BY id"),
            {"d": decision_id},
        ))  # fmt: skip


def test_every_status_change_writes_one_audit_row(
    client: httpx.Client, database: Database, make_key: Callable[..., str]
) -> None:
    admin, operator = bearer(make_key("admin")), bearer(make_key("operate", name="alice"))
    item = {"entity": {"kind": "workload", "id": "web", "cluster": "west"}, "metric": "requests",
            "unit": "req/s", "samples": [[T0 + 300 * i, 40.0] for i in range(24)]}  # fmt: skip
    assert client.post("/v1/telemetry", json=batch(item), headers=admin).status_code == 200

    def workload(mode: str) -> None:
        body = {
            "cluster": "west",
            "replicas": 3,
            "replica_capacity": 20,
            "capacity_metric": "requests",
            "mode": mode,
        }
        assert client.put("/v1/workloads/web", json=body, headers=admin).status_code == 200

    def recommend() -> dict[str, Any]:
        answer = client.post("/v1/recommendations/scaling", json={"workload": "web"}, headers=operator)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def act(decision_id: int, verb: str, expected: int = 200) -> None:
        before = len(events(database, decision_id))
        body = {"windows": 4, "violations": 0} if verb == "outcome" else {"note": verb}
        answer = client.post(f"/v1/decisions/{decision_id}/{verb}", json=body, headers=operator)
        assert answer.status_code == expected, answer.text
        after = events(database, decision_id)
        assert len(after) == before + (1 if expected < 300 else 0), (verb, after)

    workload("approve")
    approved, rejected, expired = recommend()["id"], recommend()["id"], recommend()["id"]
    act(approved, "approve")
    act(approved, "apply")
    act(approved, "outcome", expected=201)
    act(rejected, "reject")
    act(rejected, "approve", expected=409)  # a refused change leaves no trace
    act(rejected, "apply", expected=409)
    with database.engine.begin() as connection:  # its window passes; the background job expires it
        connection.execute(text("UPDATE decisions SET expires_at = created_at WHERE id = :d"), {"d": expired})
    with database.session() as session:
        assert decisions.expire_stale(session) == 1
    workload("auto")
    auto = recommend()
    workload("shadow")
    shadow = recommend()
    act(shadow["id"], "approve", expected=409)

    actor = "key:alice#"
    expected = {
        approved: [("foresight", None, "proposed"), (actor, "proposed", "approved"),
                   (actor, "approved", "applied"), (actor, "applied", "applied")],
        rejected: [("foresight", None, "proposed"), (actor, "proposed", "rejected")],
        expired: [("foresight", None, "proposed"), ("foresight", "proposed", "expired")],
        auto["id"]: [("foresight", None, "proposed"), ("foresight:auto", "proposed", "applied")],
        shadow["id"]: [("foresight", None, "proposed")],
    }  # fmt: skip
    with database.engine.connect() as connection:
        status = dict(connection.execute(text("SELECT id, status FROM decisions")).all())
    for decision_id, trail in expected.items():
        rows = events(database, decision_id)
        assert [
            (r.actor.split("#")[0] + ("#" if "#" in r.actor else ""), r.from_status, r.to_status)
            for r in rows
        ] == trail
        assert all(r.ts is not None for r in rows)
        assert [r.ts for r in rows] == sorted(r.ts for r in rows)  # in the order they happened
        assert status[decision_id] == rows[-1].to_status
