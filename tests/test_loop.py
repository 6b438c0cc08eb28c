"""The control loop on both backends, through real HTTP where a user would act: it decides for every
managed workload on its cadence (once per new data), records by mode, serves the recommendation
endpoint from its decision while nothing changed, carries auto decisions out through the target's
actuator with safety limits and kill switches, retries transient refusals, marks refusals `failed`, and
measures what the cluster reached."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from sqlalchemy import update

from service.actuators.base import ActuationRequest, ActuationResult, ScaleTarget
from service.actuators.registry import register_actuator
from service.config import Settings
from service.db import Database
from service.loop.jobs import run_once
from service.models import Actuation, LoopTarget
from tests.conftest import settings_for
from tests.helpers import batch, bearer

STEP = 60


@dataclass
class ScriptedCluster:
    """A stand-in for a cluster API: answers each apply from a script, records what it was asked, and
    keeps the replicas it accepted (the test double of an external system, not of the database)."""

    script: list[ActuationResult] = field(default_factory=list)
    requests: list[ActuationRequest] = field(default_factory=list)
    replicas: dict[str, int] = field(default_factory=dict)
    name: str = "scripted"

    def apply(self, request: ActuationRequest) -> ActuationResult:
        self.requests.append(request)
        result = self.script.pop(0) if self.script else ActuationResult("applied", "scaled")
        if result.status == "applied" and "replicas" in request.params and not request.dry_run:
            self.replicas[request.target] = int(request.params["replicas"])
        return result

    def current_replicas(self, target: ScaleTarget) -> int | None:
        return self.replicas.get(target.ref)


CLUSTER = ScriptedCluster()
register_actuator("scripted", lambda _settings: CLUSTER)


@pytest.fixture
def cluster() -> Iterator[ScriptedCluster]:
    CLUSTER.script.clear()
    CLUSTER.requests.clear()
    CLUSTER.replicas.clear()
    yield CLUSTER


@pytest.fixture
def admin(make_key: Callable[..., str]) -> dict[str, str]:
    return bearer(make_key("admin", name="ops"))


def _samples(start: float, count: int, level: float) -> list[list[float]]:
    t = start + STEP * np.arange(count)
    values = level + 5 * np.sin(np.arange(count) / 10)
    return [[int(a), round(float(b), 3)] for a, b in zip(t, values, strict=True)]


NAME = "shop/Deployment/web"


def _ingest(client: httpx.Client, admin: dict[str, str], samples: list[list[float]]) -> None:
    item = {
        "entity": {"kind": "workload", "id": NAME, "cluster": "west"},
        "metric": "requests_per_second",
        "unit": "req/s",
        "samples": samples,
    }
    answer = client.post("/v1/telemetry", json=batch(item), headers=admin)
    assert answer.status_code == 200, answer.text


def _setup(
    client: httpx.Client, admin: dict[str, str], mode: str, actuator: str | None = None, **extra: object
) -> float:
    """A workload named as Kubernetes names it, 3 h of per-minute load ending now, a trained model, and
    the loop target's actuator when given."""
    start = time.time() - 180 * STEP
    _ingest(client, admin, _samples(start, 180, 100.0))
    body = {"cluster": "west", "replicas": 4, "replica_capacity": 10.0, "max_replicas": 50, "mode": mode}
    answer = client.put(f"/v1/workloads/{NAME}", json=body | extra, headers=admin)
    assert answer.status_code == 200 and answer.json()["scale_target"] == NAME, answer.text
    train = {"model": "seasonal_naive", "horizon": 6, "backtest": False, "entity_kind": "workload"}
    assert client.post("/v1/models/train", json=train, headers=admin).status_code == 201
    if actuator is not None:
        target = client.put(
            f"/v1/loop/targets/workload/{NAME}", json={"cluster": "west", "actuator": actuator}, headers=admin
        )
        assert target.status_code == 200, target.text
    return start + 180 * STEP


def _decisions(client: httpx.Client, admin: dict[str, str]) -> list[dict[str, object]]:
    items: list[dict[str, object]] = client.get("/v1/decisions?kind=scaling", headers=admin).json()["items"]
    return items


@pytest.fixture
def loop_db(database: Database) -> Iterator[Database]:
    """The test database as a loop replica sees it (jobs' settings, the scripted actuator known)."""
    with _loop_database(database) as db:
        yield db


@contextmanager
def _loop_database(database: Database, **overrides: object) -> Iterator[Database]:
    db = Database(settings_for(database.engine.url.render_as_string(hide_password=False), **overrides))
    try:
        yield db
    finally:
        db.dispose()


def _due_now(database: Database) -> None:
    """Every target is due again (as it is once its cadence has passed)."""
    with database.engine.begin() as connection:
        connection.execute(update(LoopTarget).values(next_due_at=datetime(2000, 1, 1, tzinfo=UTC)))


def test_loop_decides_once_per_new_data_and_serves_the_endpoint(
    client: httpx.Client, database: Database, admin: dict[str, str]
) -> None:
    last = _setup(client, admin, "approve")
    first = run_once(database)
    assert first["claimed"] == 1 and first.get("decided") == 1, first
    [decision] = _decisions(client, admin)
    assert decision["status"] == "proposed" and decision["explanation"]["requested_by"] == "foresight:loop"

    _due_now(database)
    again = run_once(database)
    assert again.get("unchanged") == 1 and len(_decisions(client, admin)) == 1, again

    served = client.post("/v1/recommendations/scaling", json={"workload": NAME}, headers=admin)
    assert served.status_code == 200 and served.json()["id"] == decision["id"]
    asked = client.post("/v1/recommendations/scaling", json={"workload": NAME, "epsilon": 0.2}, headers=admin)
    assert asked.status_code == 201 and asked.json()["id"] != decision["id"]  # an override is decided anew

    _ingest(client, admin, _samples(last, 2, 100.0))
    _due_now(database)
    assert run_once(database).get("decided") == 1
    newest = _decisions(client, admin)[0]
    assert newest["id"] not in (decision["id"], asked.json()["id"])
    fresh = client.post("/v1/recommendations/scaling", json={"workload": NAME}, headers=admin)
    assert fresh.json()["id"] == newest["id"]


def test_auto_mode_actuates_through_the_targets_actuator_and_measures_the_outcome(
    client: httpx.Client,
    database: Database,
    admin: dict[str, str],
    cluster: ScriptedCluster,
    loop_db: Database,
) -> None:
    _setup(client, admin, "auto", actuator="scripted")
    run_once(loop_db)
    [decision] = _decisions(client, admin)
    assert decision["status"] == "applied", decision["history"]
    wanted = decision["params"]["replicas"]
    assert [r.target for r in cluster.requests] == [NAME] and cluster.replicas[NAME] == wanted
    workload = client.get(f"/v1/workloads/{NAME}", headers=admin).json()
    assert workload["replicas"] == wanted  # what runs now, not the number PUT once
    run_once(loop_db)  # the outcome: what the cluster reached
    outcome = client.get(f"/v1/decisions/{decision['id']}", headers=admin).json()["outcome"]
    assert outcome is not None and outcome["details"]["replicas_reached"] == wanted
    assert outcome["details"]["source"] == "scripted"


def test_transient_refusals_are_retried_and_final_ones_fail(
    client: httpx.Client,
    database: Database,
    admin: dict[str, str],
    cluster: ScriptedCluster,
    loop_db: Database,
) -> None:
    _setup(client, admin, "auto", actuator="scripted")
    cluster.script[:] = [ActuationResult("retry_later", "409 conflict, retries spent", retryable=True)]
    run_once(loop_db)
    [decision] = _decisions(client, admin)
    assert decision["status"] == "approved"
    with database.engine.begin() as connection:  # the backoff has passed
        connection.execute(update(Actuation).values(finished_at=datetime(2000, 1, 1, tzinfo=UTC)))
    summary = run_once(loop_db)
    assert summary["retried"] == 1
    decision = client.get(f"/v1/decisions/{decision['id']}", headers=admin).json()
    assert decision["status"] == "applied" and len(cluster.requests) == 2
    assert {r.decision_id for r in cluster.requests} == {decision["id"]}  # one idempotency key

    cluster.script[:] = [ActuationResult("refused", "deployments.apps 'web' not found")]
    _ingest(client, admin, _samples(time.time(), 1, 300.0))
    _due_now(database)
    run_once(loop_db)
    failed = _decisions(client, admin)[0]
    assert failed["status"] == "failed" and "not found" in failed["history"][-1]["note"]


def test_kill_switches_freeze_actuation_but_not_decisions(
    client: httpx.Client,
    database: Database,
    admin: dict[str, str],
    cluster: ScriptedCluster,
    loop_db: Database,
) -> None:
    _setup(client, admin, "auto", actuator="scripted")
    frozen = client.post("/v1/loop/freeze", json={"reason": "incident 42"}, headers=admin)
    assert frozen.status_code == 200 and frozen.json()["actuation"] == "frozen"
    run_once(loop_db)
    [decision] = _decisions(client, admin)
    assert decision["status"] == "approved" and cluster.requests == []
    keda = client.get(f"/v1/keda/workloads/{NAME}", headers=admin).json()
    assert keda["stale"] and "incident 42" in keda["stale_reason"] and keda["replicas"] == 4
    assert client.post("/v1/loop/unfreeze", headers=admin).json()["actuation"] == "enabled"
    run_once(loop_db)
    assert client.get(f"/v1/decisions/{decision['id']}", headers=admin).json()["status"] == "applied"

    canary = {"cluster": "west", "frozen": True, "reason": "canary"}
    per_target = client.put(f"/v1/loop/targets/workload/{NAME}", json=canary, headers=admin)
    assert per_target.status_code == 200 and per_target.json()["frozen_by"] == "key:ops#1"
    _ingest(client, admin, _samples(time.time(), 1, 400.0))
    _due_now(database)
    run_once(loop_db)
    assert _decisions(client, admin)[0]["status"] == "approved" and len(cluster.requests) == 1


def test_safety_limit_clamps_a_large_change(
    client: httpx.Client, database: Database, admin: dict[str, str], cluster: ScriptedCluster
) -> None:
    _setup(client, admin, "auto", actuator="scripted")
    with _loop_database(database, actuation_max_change_pods=1, actuation_max_change_fraction=0.25) as limited:
        run_once(limited)
    [decision] = _decisions(client, admin)
    assert decision["status"] == "applied" and cluster.requests[0].params["replicas"] == 5  # 4 + max(1, 1)
    assert any("safety: " in (event["note"] or "") for event in decision["history"])


def test_approve_mode_dry_runs_then_actuates_on_approval(
    client: httpx.Client,
    database: Database,
    admin: dict[str, str],
    cluster: ScriptedCluster,
    loop_db: Database,
) -> None:
    _setup(client, admin, "approve", actuator="scripted")
    run_once(loop_db)
    [decision] = _decisions(client, admin)
    assert decision["status"] == "proposed" and [r.dry_run for r in cluster.requests] == [True]
    approved = client.post(f"/v1/decisions/{decision['id']}/approve", headers=admin)
    assert approved.status_code == 200
    final = client.get(f"/v1/decisions/{decision['id']}", headers=admin).json()
    assert final["status"] == "applied" and [r.dry_run for r in cluster.requests] == [True, False]


def test_a_failing_target_does_not_stop_the_others(
    client: httpx.Client, database: Database, admin: dict[str, str]
) -> None:
    _setup(client, admin, "shadow")
    broken = {"cluster": "west", "replica_capacity": 5.0}  # a workload without any load series
    assert client.put("/v1/workloads/lonely", json=broken, headers=admin).status_code == 200
    summary = run_once(database)
    assert summary["claimed"] == 2 and summary.get("decided") == 2, summary
    targets = {t["name"]: t for t in client.get("/v1/loop/targets", headers=admin).json()}
    assert targets["lonely"]["last_status"] == "decided"  # fell back, said why
    status = client.get("/v1/loop", headers=admin).json()
    assert status["targets"] == 2 and status["by_status"] == {"decided": 2}


@pytest.mark.postgres
def test_replicas_claim_disjoint_targets(make_pg_database: Callable[[], str]) -> None:
    """Two replicas claiming at the same moment never get the same target (FOR UPDATE SKIP LOCKED),
    and a claimed target stays with its replica until released."""
    from datetime import timedelta

    from service import migrate
    from service.loop import repository as loop
    from service.models import Cluster
    from service.models.base import utcnow

    database = Database(Settings(database_url=make_pg_database(), load_sample_data=False))
    migrate.upgrade(database.engine)
    with database.session() as session:
        session.add(Cluster(id=1, name="west"))
        session.flush()
        session.add_all(
            LoopTarget(
                target_kind="workload", target_id=i, cluster_id=1, next_due_at=utcnow(), last_detail={}
            )
            for i in range(10)
        )
    a, b = database.session_factory(), database.session_factory()
    try:
        first = {t.id for t in loop.claim_due(a, utcnow(), 6, timedelta(seconds=60), "a")}
        second = {t.id for t in loop.claim_due(b, utcnow(), 6, timedelta(seconds=60), "b")}
        assert len(first) == 6 and len(second) == 4 and not first & second
        a.commit()
        b.commit()
        with database.session() as c:
            assert loop.claim_due(c, utcnow(), 10, timedelta(seconds=60), "c") == []
    finally:
        a.close()
        b.close()
        database.dispose()
