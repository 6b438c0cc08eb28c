"""`foresight db backup` / `restore` round-trips every table on both backends and across them (SQLite
backup into Postgres and back): identical rows afterwards, ids keep counting from where they were, a
non-empty target or another revision is refused, and a damaged backup restores nothing."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service import backup as backups
from service import migrate
from service.auth import service as auth_service
from service.db import Database
from service.errors import Conflict, InvalidInput
from tests.conftest import LiveServer, settings_for
from tests.helpers import T0, bearer

SAMPLES = backups.BATCH_ROWS + 1_500  # more than one streamed batch


def populate(base_url: str, key: str) -> None:
    """Rows in every kind of table through the API: telemetry, inventory, events, decisions with their
    audit trail and an outcome, a trained model (binary artifact) with stored forecasts, a revoked key."""
    with httpx.Client(base_url=base_url, headers=bearer(key), timeout=120) as http:

        def ok(answer: httpx.Response) -> Any:
            assert answer.status_code < 300, (answer.request.url, answer.text)
            return answer.json()

        load = [[T0 + 60 * i, 50.0 + (i % 60) * 0.25] for i in range(SAMPLES)]
        ok(http.post("/v1/telemetry", json={"series": [
            {"entity": {"kind": "workload", "id": "web", "cluster": "west"}, "metric": "requests",
             "unit": "req/s", "labels": {"tier": "front"}, "samples": load},
            {"entity": {"kind": "node", "id": "n1", "cluster": "west"}, "metric": "gpu_power_watts",
             "unit": "W", "samples": [[T0, 300.0], [T0 + 60, 310.5]]},
        ]}))  # fmt: skip
        ok(http.put("/v1/workloads/web", json={
            "cluster": "west", "replicas": 3, "replica_capacity": 20, "capacity_metric": "requests",
            "mode": "approve",
        }))  # fmt: skip
        ok(http.put("/v1/nodes/n1", json={"cluster": "west", "pool": "gpu", "power_domain": "rack-1"}))
        ok(http.post("/v1/nodes/n1/events", json={"cluster": "west", "kind": "ecc_errors"}))
        ok(
            http.post(
                "/v1/models/train", json={"model": "seasonal_naive", "backtest": False, "metric": "requests"}
            )
        )
        series_id = ok(http.get("/v1/series", params={"metric": "requests"}))["items"][0]["id"]
        ok(http.get("/v1/forecasts", params={"series": series_id, "horizon": 3}))
        first = ok(http.post("/v1/recommendations/scaling", json={"workload": "web"}))["id"]
        second = ok(http.post("/v1/recommendations/scaling", json={"workload": "web"}))["id"]
        ok(http.post(f"/v1/decisions/{first}/approve", json={"note": "ok"}))
        ok(http.post(f"/v1/decisions/{first}/apply", json={}))
        ok(http.post(f"/v1/decisions/{first}/outcome", json={"windows": 4, "violations": 1}))
        ok(http.post(f"/v1/decisions/{second}/reject", json={"note": "no"}))
        spare = ok(http.post("/v1/keys", json={"name": "old", "scopes": ["read"]}))
        ok(http.delete(f"/v1/keys/{spare['id']}"))


def contents(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, decoded through the ORM types, in primary-key order."""
    with database.engine.connect() as connection:
        return {
            table.name: [
                tuple(row) for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in backups.tables()
        }


def fresh(url: str, revision: str = "head") -> Database:
    database = Database(settings_for(url))
    migrate.upgrade(database.engine, revision)
    return database


def run_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"FORESIGHT_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def populated(live_server: LiveServer, database: Database) -> Database:
    with database.session() as session:
        key = auth_service.create_key(session, "backup-test", ["admin"]).key
    populate(live_server.url, key)
    return database


@pytest.fixture
def scratch_url(backend: str, tmp_path: Path, make_pg_database: Callable[[], str]) -> str:
    """An empty database of the current backend (not yet migrated)."""
    return f"sqlite:///{tmp_path / 'restored.db'}" if backend == "sqlite" else make_pg_database()


def test_backup_restore_round_trip_through_the_cli(
    populated: Database, migrated_url: str, scratch_url: str, tmp_path: Path
) -> None:
    before = contents(populated)
    assert all(before[name] for name in ("samples", "models", "forecasts", "decision_events", "outcomes"))
    assert len(before["samples"]) == SAMPLES + 2
    file = tmp_path / "foresight.backup.gz"
    made = run_cli(migrated_url, "db", "backup", str(file))
    assert made.returncode == 0, made.stderr
    assert f"{sum(map(len, before.values())):,} rows" in made.stderr
    target = fresh(scratch_url)
    restored = run_cli(scratch_url, "db", "restore", str(file))
    assert restored.returncode == 0, restored.stderr
    assert contents(target) == before
    with pytest.raises(Conflict, match="not empty"):
        backups.restore(target, file)
    backups.restore(target, file, force=True)
    assert contents(target) == before
    with target.session() as session:  # ids continue after the restored ones
        new_key = auth_service.create_key(session, "after-restore", ["read"])
    assert new_key.id > max(row[0] for row in before["api_keys"])
    target.dispose()


def test_restore_refuses_another_revision_and_damaged_files(
    populated: Database, scratch_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "b.gz"
    backups.backup(populated, file)
    older = fresh(scratch_url, "0002")
    with pytest.raises(Conflict, match="revision"):
        backups.restore(older, file)
    older.dispose()
    target = fresh(scratch_url)
    lines = gzip.decompress(file.read_bytes()).decode().splitlines()
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(gzip.compress("\n".join(lines[: len(lines) - 3]).encode()))
    with pytest.raises(InvalidInput, match=r"truncated|corrupt"):
        backups.restore(target, truncated)
    assert not any(contents(target).values())  # all or nothing
    garbage = tmp_path / "garbage.gz"
    garbage.write_bytes(b"not a backup")
    with pytest.raises(InvalidInput, match="not a Foresight backup"):
        backups.restore(target, garbage)
    target.dispose()


@pytest.mark.postgres
def test_sqlite_backup_restores_into_postgres_and_back(
    tmp_path: Path, make_pg_database: Callable[[], str]
) -> None:
    source = fresh(f"sqlite:///{tmp_path / 'source.db'}")
    with source.session() as session:
        key = auth_service.create_key(session, "cross", ["admin"]).key
    server = LiveServer(settings_for(source.settings.database_url)).start()
    try:
        populate(server.url, key)
    finally:
        server.stop()
    before = contents(source)
    backups.backup(source, tmp_path / "sqlite.gz")
    postgres = fresh(make_pg_database())
    summary = backups.restore(postgres, tmp_path / "sqlite.gz")
    assert summary.rows == sum(map(len, before.values()))
    assert contents(postgres) == before
    backups.backup(postgres, tmp_path / "postgres.gz")
    back = fresh(f"sqlite:///{tmp_path / 'back.db'}")
    backups.restore(back, tmp_path / "postgres.gz")
    assert contents(back) == before
    for database in (source, postgres, back):
        database.dispose()
