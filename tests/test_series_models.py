"""The series -> model table: the newest forecaster trained on a series serves it (one lookup, no scan of
the registry), and the migration that adds the table fills it from the registry's existing models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from service import migrate
from service.db import Database
from tests.conftest import settings_for
from tests.helpers import T0, batch, bearer, series


def _seed(client: httpx.Client, headers: dict[str, str]) -> dict[str, int]:
    samples = [[T0 + 300 * i, 50.0 + (i % 12)] for i in range(600)]
    items = [series(f"web-{i}", "requests_per_second", "req/s", samples, kind="workload") for i in range(2)]
    assert client.post("/v1/telemetry", json=batch(*items), headers=headers).status_code == 200
    listed = client.get("/v1/series", headers=headers).json()["items"]
    return {s["entity_id"]: s["id"] for s in listed}


def test_the_newest_model_covering_a_series_serves_it(
    client: httpx.Client, database: Database, make_key: Callable[..., str]
) -> None:
    headers = bearer(make_key("admin"))
    ids = _seed(client, headers)
    train = {"model": "seasonal_naive", "horizon": 6, "backtest": False}
    both = client.post("/v1/models/train", json=train | {"entity_kind": "workload"}, headers=headers)
    only_web1 = client.post("/v1/models/train", json=train | {"series_ids": [ids["web-1"]]}, headers=headers)
    assert both.status_code == only_web1.status_code == 201, both.text + only_web1.text
    served = {
        name: client.get("/v1/forecasts", params={"series": sid, "horizon": 6}, headers=headers).json()
        for name, sid in ids.items()
    }
    assert served["web-0"]["model_id"] == both.json()["id"]
    assert served["web-1"]["model_id"] == only_web1.json()["id"]
    with database.engine.connect() as connection:
        rows = dict(connection.execute(text("SELECT series_id, model_id FROM series_models")).all())
    assert rows == {ids["web-0"]: both.json()["id"], ids["web-1"]: only_web1.json()["id"]}


@pytest.mark.parametrize("backend_name", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migration_fills_the_table_from_the_registry(
    backend_name: str, tmp_path: Path, make_pg_database: Callable[[], str]
) -> None:
    url = make_pg_database() if backend_name == "postgres" else f"sqlite:///{tmp_path}/old.db"
    database = Database(settings_for(url))
    migrate.upgrade(database.engine, "0004")
    with database.engine.begin() as connection:
        connection.execute(text("INSERT INTO clusters (id, name, created_at) VALUES (1, 'west', :t)"),
                           {"t": "2026-01-01T00:00:00+00:00"})  # fmt: skip
        for sid in (1, 2):
            connection.execute(
                text("INSERT INTO series (id, cluster_id, entity_kind, entity_name, metric, unit, labels, "
                     "labels_key, created_at) VALUES (:id, 1, 'node', :n, 'cpu', '%', '{}', '', :t)"),
                {"id": sid, "n": f"n{sid}", "t": "2026-01-01T00:00:00+00:00"},
            )  # fmt: skip
        for model_id, covered in ((1, [1, 2]), (2, [2]), (3, [99])):  # 99: a series since deleted
            params = '{"series": [' + ", ".join(f'[{s}, "west/node/n{s}", "cpu"]' for s in covered) + "]}"
            connection.execute(
                text("INSERT INTO models (id, kind, name, version, params, metrics, created_at) "
                     "VALUES (:id, 'forecaster', 'seasonal_naive', :id, :p, '{}', :t)"),
                {"id": model_id, "p": params, "t": "2026-01-01T00:00:00+00:00"},
            )  # fmt: skip
    migrate.upgrade(database.engine)
    with database.engine.connect() as connection:
        rows = connection.execute(text("SELECT series_id, model_id, entity FROM series_models")).all()
    assert sorted(tuple(r) for r in rows) == [(1, 1, "west/node/n1"), (2, 2, "west/node/n2")]
    database.dispose()
