"""Background jobs on both backends: two replicas (separate engines) racing for one job run it once per
period; a job that fails half-way leaves no model behind; the retraining job retrains stale or drifted
forecasters and leaves healthy ones alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import Database
from service.forecasts import frames
from service.forecasts import service as forecasts
from service.forecasts.retrain import retrain_due
from service.forecasts.served import to_api
from service.jobs import Job, run_if_due
from service.models import ModelRecord
from tests.conftest import settings_for
from tests.helpers import batch, bearer, series
from tests.test_forecasts_api import DAY, _samples


def test_two_replicas_run_a_due_job_once(database: Database, migrated_url: str) -> None:
    runs: list[str] = []

    def slow(session: Session, settings: Settings) -> dict[str, Any]:
        runs.append(threading.current_thread().name)
        time.sleep(0.5)
        return {}

    job = Job("slow", every_seconds=3600, run=slow)
    replicas = [Database(settings_for(migrated_url)) for _ in range(2)]
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda db=db: outcomes.append(run_if_due(db, db.settings, job)), name=f"r{i}")
        for i, db in enumerate(replicas)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["locked", "ran"] or sorted(outcomes) == ["not_due", "ran"]
    assert len(runs) == 1
    assert [run_if_due(db, db.settings, job) for db in replicas] == ["not_due", "not_due"]
    for db in replicas:
        db.dispose()


def test_failed_job_leaves_nothing_half_written(database: Database) -> None:
    def half_way(session: Session, settings: Settings) -> dict[str, Any]:
        session.add(ModelRecord(kind="forecaster", name="partial", version=1, params={}, metrics={}))
        session.flush()
        raise RuntimeError("killed mid-job")

    assert run_if_due(database, database.settings, Job("half", 60, half_way)) == "failed"
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM models")).scalar_one() == 0
        status = connection.execute(text("SELECT last_status FROM job_runs WHERE name = 'half'")).scalar_one()
    assert status == "failed"


def test_retraining_job(client: httpx.Client, database: Database, make_key: Callable[..., str]) -> None:
    items = [series("api", "requests_per_second", "req/s", _samples(0, 3 * DAY, 0), kind="workload")]
    client.post("/v1/telemetry", json=batch(*items), headers=bearer(make_key("ingest")))
    settings = settings_for(database.settings.database_url, retrain_interval_seconds=3600)
    request = forecasts.TrainRequest(selection=frames.Selection(cluster="west"), model="seasonal_naive")
    with database.session() as session:
        first = forecasts.train(session, request)
    with database.session() as session:
        assert retrain_due(session, settings) == {"trained": []}  # fresh, nothing scored yet
        session.execute(update(ModelRecord).values(created_at=first.created_at - timedelta(days=1)))
    with database.session() as session:
        stale = retrain_due(session, settings)["trained"]
    assert [(t["replaces"], t["reason"]) for t in stale] == [(first.id, "older than the retrain interval")]
    with database.session() as session:
        newest = forecasts.list_models(session)[0]
        assert (newest.name, newest.version) == ("seasonal_naive", 2)
        served = to_api(forecasts.forecast(session, first.params["series"][0][0], 24))
        session.execute(
            text("UPDATE forecasts SET quantiles = :q"), {"q": '{"0.1": -2.0, "0.5": -1.0, "0.9": -0.5}'}
        )  # every stored interval now misses what will be observed
    future = series("api", "requests_per_second", "req/s", _samples(3 * DAY, 24, 0), kind="workload")
    client.post("/v1/telemetry", json=batch(future), headers=bearer(make_key("ingest")))
    with database.session() as session:
        drifted = retrain_due(session, settings)["trained"]
    assert len(drifted) == 1 and "coverage 0.00 drifted" in drifted[0]["reason"], drifted
    assert served.points and drifted[0]["replaces"] == newest.id


def test_per_cluster_training_on_ray(
    client: httpx.Client, database: Database, make_key: Callable[..., str]
) -> None:
    items = [
        series(f"api-{cluster}", "requests_per_second", "req/s", _samples(0, 2 * DAY, i), kind="workload",
               cluster=cluster)
        for i, cluster in enumerate(("east", "west"))
    ]  # fmt: skip
    client.post("/v1/telemetry", json=batch(*items), headers=bearer(make_key("ingest")))
    request = forecasts.TrainRequest(model="seasonal_naive")
    with database.session() as session:
        models = forecasts.train_per_cluster(session, request)
    assert [(m.version, [entry[1] for entry in m.params["series"]]) for m in models] == [
        (1, ["east/workload/api-east"]), (2, ["west/workload/api-west"])
    ]  # fmt: skip
    with database.session() as session:  # each cluster's model serves its own series
        for model in models:
            served = to_api(forecasts.forecast(session, model.params["series"][0][0], 6))
            assert served.model_id == model.id and len(served.points) == 6
