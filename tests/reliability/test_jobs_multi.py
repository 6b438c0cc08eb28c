"""Background jobs across real service processes on one Postgres (a private cluster, issue 7 faults).

Two replicas running the scheduler retrain a stale forecaster exactly once per due period and expire
each decision exactly once (the advisory lock). A replica SIGKILLed in the middle of a job — held by a
test trigger right after it wrote the new models row, or the decision's audit entry, in its still open
transaction — leaves nothing of that transaction behind (checked by its transaction id), and the next
run completes the work: the surviving replica's scheduler, or the job run again.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from service.db import Database
from service.decisions.jobs import expire_job
from service.forecasts import frames
from service.forecasts import service as forecasts
from service.jobs import run_if_due
from service.telemetry import service as telemetry
from tests.conftest import settings_for
from tests.reliability.ingest_driver import migrate_and_key, write_env
from tests.reliability.pgcluster import PgCluster, cluster_for_tests
from tests.test_startup import _serve, _stop

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(170)]
T = TypeVar("T")
TICK = 0.3
HOLD_MODELS, HOLD_EVENTS = 74_201, 74_202  # advisory keys the test triggers wait on
DAY = 86_400
T0 = int(time.time()) // 300 * 300 - 2 * DAY


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    yield from cluster_for_tests()


def poll(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """The first truthy answer of `probe`, or fail after `timeout` seconds saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def seed(url: str) -> None:
    """Three series with two days of 5-minute load and a first forecaster trained on them."""
    settings = settings_for(url)
    database = Database(settings)
    items = [
        {"entity": {"kind": "node", "id": f"job-node-{i}", "cluster": "jobs"}, "metric": "cpu_utilization",
         "unit": "%", "samples": [[T0 + 300 * k, 40 + 20 * ((k + 7 * i) % 288) / 288] for k in range(576)]}
        for i in range(3)
    ]  # fmt: skip
    try:
        with database.session() as session:
            telemetry.ingest_document(session, {"series": items}, settings)
        with database.session() as session:
            request = forecasts.TrainRequest(
                selection=frames.Selection(cluster="jobs"), model="seasonal_naive", horizon=6
            )
            forecasts.train(session, request)
    finally:
        database.dispose()


def add_stale_decision(connection: psycopg.Connection, target: str) -> int:
    row = connection.execute(
        "INSERT INTO decisions (kind, target_kind, target_name, action, params, status, mode, explanation,"
        " created_at, updated_at, expires_at) VALUES ('scaling', 'workload', %s, 'scale_to', '{}',"
        " 'proposed', 'approve', '{}', now() - interval '2 hours', now() - interval '2 hours',"
        " now() - interval '1 hour') RETURNING id",
        (target,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def hold_after_insert(connection: psycopg.Connection, table: str, key: int) -> None:
    """Test instrument: every INSERT into `table` then waits for advisory lock `key` inside the writer's
    transaction, so a job can be caught (and killed) with its row written but not committed."""
    connection.execute(
        "CREATE OR REPLACE FUNCTION foresight_test_hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " PERFORM pg_advisory_xact_lock_shared(TG_ARGV[0]::bigint); RETURN NULL; END $$"
    )
    connection.execute(
        f"CREATE TRIGGER test_hold_{table} AFTER INSERT ON {table} FOR EACH ROW "
        f"EXECUTE FUNCTION foresight_test_hold('{key}')"
    )


def waiting_on(connection: psycopg.Connection, key: int) -> tuple[int, str] | None:
    """(backend pid, application name) of a transaction blocked in the test trigger on `key`."""
    row = connection.execute(
        "SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.objid::bigint = %s AND NOT l.granted",
        (key,),
    ).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def holds_write_lock(connection: psycopg.Connection, pid: int, table: str) -> bool:
    return bool(
        connection.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND relation = %s::regclass"
            " AND mode = 'RowExclusiveLock' AND granted",
            (pid, table),
        ).fetchone()[0]  # type: ignore[index]
    )


def backend_gone(connection: psycopg.Connection, pid: int) -> bool:
    row = connection.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row[0] == 0


def scalar(connection: psycopg.Connection, sql: str, *params: Any) -> Any:
    row = connection.execute(sql, params).fetchone()
    return row[0] if row else None


def start_replicas(tmp_path: Path, url: str, *names: str) -> dict[str, subprocess.Popen[str]]:
    """Service processes with the scheduler on (ticking every TICK s), started in parallel; each names
    itself to Postgres (application_name) so the test can tell whose transaction it sees."""
    started: dict[str, subprocess.Popen[str]] = {}
    errors: list[BaseException] = []

    def one(name: str) -> None:
        workdir = tmp_path / name
        workdir.mkdir()
        write_env(workdir, f"{url}?application_name={name}", jobs_enabled=True, jobs_tick_seconds=TICK,
                  retrain_interval_seconds=DAY)  # fmt: skip
        try:
            started[name] = _serve(workdir)[0]
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=one, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        stop_all(started)
        raise errors[0]
    return started


def kill(process: subprocess.Popen[str]) -> None:
    process.kill()  # SIGKILL: no clean-up code runs
    process.communicate(timeout=30)


def stop_all(processes: dict[str, subprocess.Popen[str]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            _stop(process)


def database_for(cluster: PgCluster, prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = cluster.create_database(name)
    migrate_and_key(url)
    seed(url)
    return name, url


def backend_xid(connection: psycopg.Connection, pid: int) -> str:
    """The id of the transaction a backend has open (assigned once it wrote something)."""
    xid = scalar(connection, "SELECT backend_xid::text FROM pg_stat_activity WHERE pid = %s", pid)
    assert xid, f"backend {pid} has written nothing yet"
    return str(xid)


def rows_of_transaction(connection: psycopg.Connection, table: str, xid: str) -> int:
    return int(scalar(connection, f"SELECT count(*) FROM {table} WHERE xmin::text = %s", xid))


def test_postgres_replica_killed_mid_expiry_leaves_no_half_written_decision(
    cluster: PgCluster, tmp_path: Path
) -> None:
    name, url = database_for(cluster, "jobkill")
    with cluster.connect(name) as db, cluster.connect(name) as holder:
        decision = add_stale_decision(db, "web")
        hold_after_insert(db, "decision_events", HOLD_EVENTS)
        holder.execute("SELECT pg_advisory_lock(%s)", (HOLD_EVENTS,))
        replicas = start_replicas(tmp_path, url, "replica-a")
        try:  # the expiry job has moved the decision and written its audit entry, uncommitted: kill
            pid, who = poll(lambda: waiting_on(db, HOLD_EVENTS), 90, "the expiry job to write its audit")
            assert who == "replica-a" and holds_write_lock(db, pid, "decision_events")
            assert holds_write_lock(db, pid, "decisions")
            xid = backend_xid(db, pid)
            kill(replicas["replica-a"])
        finally:
            stop_all(replicas)
            holder.execute("SELECT pg_advisory_unlock(%s)", (HOLD_EVENTS,))
        poll(lambda: backend_gone(db, pid), 30, "the killed replica's transaction to end")
        assert scalar(db, "SELECT status FROM decisions WHERE id = %s", decision) == "proposed"
        assert scalar(db, "SELECT count(*) FROM decision_events") == 0
        assert rows_of_transaction(db, "decisions", xid) == 0
        assert scalar(db, "SELECT count(*) FROM job_runs WHERE name = 'expire_decisions'") == 0
        db.execute("DROP TRIGGER test_hold_decision_events ON decision_events")

    settings = settings_for(url)  # the next run (any replica's scheduler) completes it
    database = Database(settings)
    try:
        assert run_if_due(database, settings, expire_job(settings)) == "ran"
    finally:
        database.dispose()
    with cluster.connect(name) as db:
        events = db.execute(
            "SELECT from_status, to_status FROM decision_events WHERE decision_id = %s", (decision,)
        ).fetchall()
        assert events == [("proposed", "expired")]
        assert scalar(db, "SELECT status FROM decisions WHERE id = %s", decision) == "expired"


def retrain_and_settle(db: psycopg.Connection, before: int) -> None:
    """Wait for a retrain, then for the replicas to run the job twice more and find nothing to do."""

    def retrained() -> bool:
        return bool(scalar(db, "SELECT count(*) FROM models") > before)

    poll(retrained, 90, "a retrain")
    idle: set[Any] = set()

    def settled() -> bool:
        row = db.execute(
            "SELECT last_finished, last_detail FROM job_runs WHERE name = 'retrain_forecasters'"
        ).fetchone()
        if row and row[1] == {"trained": []}:
            idle.add(row[0])
        return len(idle) >= 2

    poll(settled, 60, "two idle runs of the retrain job after the retrain")


def test_postgres_two_replicas_run_each_job_once_and_survive_a_kill(
    cluster: PgCluster, tmp_path: Path
) -> None:
    name, url = database_for(cluster, "jobmulti")
    with cluster.connect(name) as db, cluster.connect(name) as holder:
        decisions = [add_stale_decision(db, f"web-{i}") for i in range(3)]
        replicas = start_replicas(tmp_path, url, "replica-a", "replica-b")
        try:
            for _round in range(2):  # each due period: exactly one retrain between the two replicas
                before = int(scalar(db, "SELECT count(*) FROM models"))
                db.execute("UPDATE models SET created_at = created_at - interval '2 days'")
                retrain_and_settle(db, before)
                assert scalar(db, "SELECT count(*) FROM models") == before + 1

            before = int(scalar(db, "SELECT count(*) FROM models"))
            hold_after_insert(db, "models", HOLD_MODELS)
            holder.execute("SELECT pg_advisory_lock(%s)", (HOLD_MODELS,))
            db.execute("UPDATE models SET created_at = created_at - interval '2 days'")
            pid, who = poll(lambda: waiting_on(db, HOLD_MODELS), 90, "a retrain to write its model")
            assert who in replicas and holds_write_lock(db, pid, "models")
            xid = backend_xid(db, pid)
            kill(replicas.pop(who))  # SIGKILL with the new models row written, not committed
            holder.execute("SELECT pg_advisory_unlock(%s)", (HOLD_MODELS,))
            poll(lambda: backend_gone(db, pid), 30, "the killed replica's transaction to end")
            retrain_and_settle(db, before)  # the survivor takes the job over and completes it
            assert scalar(db, "SELECT count(*) FROM models") == before + 1
            assert rows_of_transaction(db, "models", xid) == 0  # nothing of the killed run
            assert scalar(db, "SELECT last_status FROM job_runs WHERE name = 'retrain_forecasters'") == "ok"
            assert all(process.poll() is None for process in replicas.values())
        finally:
            stop_all(replicas)
        assert scalar(db, "SELECT count(*) FROM models WHERE artifact IS NULL") == 0
        for decision in decisions:
            events = db.execute(
                "SELECT to_status FROM decision_events WHERE decision_id = %s", (decision,)
            ).fetchall()
            assert events == [("expired",)], (decision, events)
