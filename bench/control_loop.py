"""Control-loop throughput: how many workloads one core decides per minute (goal: 1,000), against the
policy alone on the same inputs, measured in the same run.

Set-up (a scratch SQLite file, or Postgres with `--pg`): N workloads with two days of 5-minute load
(NAB-shaped daily cycles with noise), one forecaster trained on all of them, the loop's targets due.
Then, pinned to one core with OMP_NUM_THREADS=1:

1. a cold pass: every workload decided once (loads the model, forecasts, decides, records);
2. steady passes: one new sample per workload arrives, then every target is due again — what the loop
   does every minute in production (the model is updated with the new samples, predicts once for all
   its series, and each workload is decided and recorded).

The reference is `bayesian_scaling.decide()` on the very same inputs without the database or the
forecaster, so the ratio says what the loop adds around the policy.

    OMP_NUM_THREADS=1 .venv/bin/python bench/control_loop.py [--workloads 1000] [--model M] [--pg]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

import numpy as np
import psycopg
from rich.console import Console
from rich.progress import track
from rich.table import Table
from sqlalchemy import update

from policies.catalog import load_all
from policies.distribution import QuantileForecast
from policies.scaling import ScalingInput
from policies.types import build_policy
from service import migrate
from service.config import Settings
from service.db import Database
from service.forecasts import frames
from service.forecasts import service as forecasts
from service.inventory import service as inventory
from service.inventory.schemas import WorkloadConfig
from service.loop.jobs import run_once
from service.models import LoopTarget
from service.models.base import utcnow
from service.telemetry import service as telemetry

console = Console()
STEP = 300


def load_of(i: int, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    level = 50 + 150 * rng.random()
    return np.maximum(
        level * (1 + 0.5 * np.sin(2 * np.pi * t / 86400 + i)) + rng.normal(0, level * 0.05, len(t)), 0
    )


def seed(database: Database, workloads: int, model: str) -> float:
    rng = np.random.default_rng(0)
    end = time.time() - STEP
    t = end - STEP * np.arange(2 * 288)[::-1]
    for start in track(range(0, workloads, 100), description="ingesting load"):
        items = [
            {
                "entity": {"kind": "workload", "id": f"w{i}", "cluster": "bench"},
                "metric": "requests_per_second",
                "unit": "req/s",
                "samples": [
                    [float(a), round(float(b), 3)] for a, b in zip(t, load_of(i, t, rng), strict=True)
                ],
            }
            for i in range(start, min(start + 100, workloads))
        ]
        with database.session() as session:
            telemetry.ingest_document(session, {"series": items}, database.settings)
    with database.session() as session:
        for i in range(workloads):
            config = WorkloadConfig(
                cluster="bench", replicas=10, replica_capacity=20.0, max_replicas=500, mode="shadow"
            )
            inventory.configure_workload(session, f"w{i}", config)
    with console.status(f"training {model} on {workloads} series"), database.session() as session:
        request = forecasts.TrainRequest(
            frames.Selection(cluster="bench"), model=model, horizon=6, run_backtest=False
        )
        forecasts.train(session, request)
    return float(t[-1])


def add_sample(database: Database, workloads: int, ts: float) -> None:
    rng = np.random.default_rng(int(ts))
    items = [
        {
            "entity": {"kind": "workload", "id": f"w{i}", "cluster": "bench"},
            "metric": "requests_per_second",
            "unit": "req/s",
            "samples": [[ts, round(float(load_of(i, np.array([ts]), rng)[0]), 3)]],
        }
        for i in range(workloads)
    ]
    with database.session() as session:
        telemetry.ingest_document(session, {"series": items}, database.settings)
        session.execute(update(LoopTarget).values(next_due_at=utcnow()))


def policy_alone(workloads: int) -> float:
    """Seconds for `decide()` on each workload's inputs (a 6-step forecast, 120 observations)."""
    load_all()
    policy = build_policy("bayesian_scaling")
    rng = np.random.default_rng(1)
    levels = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
    inputs = []
    for i in range(workloads):
        centre = 50 + 150 * rng.random()
        values = np.outer(np.ones(6), centre * (1 + 0.3 * (np.array(levels) - 0.5)))
        inputs.append(
            ScalingInput(
                workload=f"w{i}",
                now_ts=time.time(),
                current_replicas=10,
                replica_capacity=20.0,
                load_forecast=QuantileForecast(levels, values, 300.0),
                observed_load=tuple(centre + rng.normal(0, 5, 120)),
                max_replicas=500,
            )
        )
    started = time.perf_counter()
    for item in inputs:
        policy.decide(item)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument(
        "--model", default="seasonal_naive", help="forecaster the loop serves (any registered)"
    )
    parser.add_argument("--passes", type=int, default=3, help="steady passes after the cold one")
    parser.add_argument("--pg", action="store_true", help="a scratch Postgres database instead of SQLite")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    name = f"foresight_loop_bench_{uuid.uuid4().hex[:8]}"
    if args.pg:
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/loop.db"
    settings = Settings(
        database_url=url,
        load_sample_data=False,
        bootstrap_admin_key=False,
        log_level="WARNING",
        loop_batch_size=args.workloads,
    )
    database = Database(settings)
    try:
        migrate.upgrade(database.engine)
        last = seed(database, args.workloads, args.model)
        started = time.perf_counter()
        cold = run_once(database)
        cold_s = time.perf_counter() - started
        steady = []
        for k in range(args.passes):
            add_sample(database, args.workloads, last + STEP * (k + 1))
            started = time.perf_counter()
            summary = run_once(database)
            steady.append((time.perf_counter() - started, summary))
        reference = policy_alone(args.workloads)
    finally:
        database.dispose()
        if args.pg:
            with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    backend = "Postgres" if args.pg else "SQLite"
    table = Table(title=f"Control loop, {args.workloads} workloads, one core ({backend}, {args.model})")
    for column in ("pass", "decided", "seconds", "workloads / min", "vs policy alone"):
        table.add_column(column, justify="right")
    policy_rate = args.workloads / reference * 60
    table.add_row(
        "cold",
        str(cold.get("decided", 0)),
        f"{cold_s:.1f}",
        f"{cold.get('decided', 0) / cold_s * 60:,.0f}",
        f"{reference / cold_s:.2f}",
    )
    for k, (seconds, summary) in enumerate(steady, 1):
        decided = summary.get("decided", 0)
        table.add_row(
            f"steady {k}",
            str(decided),
            f"{seconds:.1f}",
            f"{decided / seconds * 60:,.0f}",
            f"{reference / seconds:.2f}",
        )
    table.add_row("policy alone", str(args.workloads), f"{reference:.2f}", f"{policy_rate:,.0f}", "1.00")
    console.print(table)
    rates = [s.get("decided", 0) / t * 60 for t, s in steady]
    console.print(
        f"steady state: {np.median(rates):,.0f} workloads decided per minute on one core (goal 1,000)"
    )


if __name__ == "__main__":
    main()
