"""API fuzzing with a large budget: schemathesis over every operation of the service's own OpenAPI, valid
and invalid cases, against a real uvicorn on 127.0.0.1 and a real database (a scratch Postgres database,
dropped afterwards, and/or a scratch SQLite file). Prints cases run, status codes and failures per
operation (goal: failures = 0) and writes them to bench/results/fuzz.json for docs/reliability.md.
Derandomized: the same budget gives the same cases.

    .venv/bin/python bench/fuzz.py [--examples 50] [--backend postgres --backend sqlite] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service import migrate  # noqa: E402
from service.auth import service as auth_service  # noqa: E402
from service.db import Database  # noqa: E402
from tests.conftest import LiveServer, settings_for  # noqa: E402
from tests.reliability.fuzzing import FuzzReport, fuzz, seed  # noqa: E402

console = Console()


def run_backend(url: str, examples: int) -> FuzzReport:
    """Migrate, start the server, seed rows, fuzz; the server is stopped whatever happens."""
    database = Database(settings_for(url))
    migrate.upgrade(database.engine)
    with database.session() as session:
        fuzzer = auth_service.create_key(session, "fuzzer", ["admin"])
    database.dispose()
    server = LiveServer(settings_for(url)).start()
    try:
        known = seed(server.url, {"Authorization": f"Bearer {fuzzer.key}"})
        with console.status(f"fuzzing with {examples} examples per operation and mode"):
            return fuzz(
                server.url, fuzzer.key, examples=examples, known=known, protected_key_ids=(fuzzer.id,)
            )
    finally:
        server.stop()


def postgres_scratch(host: str, port: int, user: str) -> tuple[str, str]:
    name = f"foresight_fuzz_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://{user}@{host}:{port}/{name}"


def drop_postgres(host: str, port: int, user: str, name: str) -> None:
    with psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def show(backend: str, report: FuzzReport) -> None:
    table = Table(title=f"fuzzing on {backend}: {report.total:,} cases, {len(report.failures)} failures")
    for column in ("operation", "cases", "status codes", "failures", "s"):
        table.add_column(column, justify="left" if column in ("operation", "status codes") else "right")
    for label, row in report.as_dict()["per_operation"].items():
        codes = " ".join(f"{code}:{n}" for code, n in row["statuses"].items())
        table.add_row(label, str(row["cases"]), codes, str(row["failures"]), f"{row['seconds']:.1f}")
    console.print(table)
    for failure in report.failures[:10]:
        console.print(
            f"[red]{failure.operation} [{failure.mode}] {failure.status}[/]\n{failure.problem[:800]}"
        )
        console.print(failure.reproduce)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=50, help="cases per operation and mode")
    parser.add_argument("--backend", action="append", choices=["postgres", "sqlite"])
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    args = parser.parse_args()
    results: dict[str, Any] = {"examples_per_operation_and_mode": args.examples, "backends": {}}
    for backend in args.backend or ["postgres", "sqlite"]:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as scratch:
                report = run_backend(f"sqlite:///{scratch}/fuzz.db", args.examples)
        else:
            name, url = postgres_scratch(args.pg_host, args.pg_port, args.pg_user)
            try:
                report = run_backend(url, args.examples)
            finally:
                drop_postgres(args.pg_host, args.pg_port, args.pg_user, name)
        show(backend, report)
        results["backends"][backend] = report.as_dict()
    results["cases_total"] = sum(r["cases_total"] for r in results["backends"].values())
    results["failures_total"] = sum(r["failures_total"] for r in results["backends"].values())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    total, failures = results["cases_total"], results["failures_total"]
    console.print(f"cases run: {total:,}; failures: {failures}; written to {args.output}")
    if results["failures_total"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
