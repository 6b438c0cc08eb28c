"""Bulk node-event import: 10,000 events in one `POST /v1/node-events` vs a raw insert of the same rows.

For each backend (SQLite file, scratch Postgres database) a real `foresight serve` is started; one POST
creates the nodes and 10,000 events (cold), a second POST sends 10,000 new events of the same nodes
(warm), a third resends the second (all duplicates: the lookup path). The reference is the same rows
written without the service: `executemany` into a SQLite table of the same shape, binary-less `COPY` into
a Postgres table with the same columns. Prints seconds and the ratio (service / raw); the goal is each
POST under 2 s.

    .venv/bin/python bench/node_events_import.py [--events 10000] [--nodes 200] [--backend both]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _server import scratch_server  # noqa: E402

from policies.mitigation_synthetic import generate  # noqa: E402

console = Console(width=220)
T0 = 1_700_000_000


def events(n: int, nodes: int, offset: int) -> list[dict[str, Any]]:
    data = generate(n, seed=offset)
    return [
        {
            "node": f"node-{i % nodes}", "cluster": "bench", "ts": T0 + 60 * (offset + i), "kind": r.kind,
            "severity": r.severity, "signals": r.signals, "context": r.context, "action_taken": r.action,
            "downtime_minutes": r.downtime_minutes,
        }
        for i, r in enumerate(data.records)
    ]  # fmt: skip


def raw_rows(batch: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (i % 200 + 1, e["ts"] * 1_000_000, e["kind"], e["severity"], json.dumps(e["signals"]),
         json.dumps(e["context"]), e["action_taken"], e["downtime_minutes"])
        for i, e in enumerate(batch)
    ]  # fmt: skip


def raw_sqlite(batch: list[dict[str, Any]]) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        db = sqlite3.connect(Path(scratch) / "raw.db")
        db.execute(
            "CREATE TABLE ev (id INTEGER PRIMARY KEY, node_id INT, ts BIGINT, kind TEXT, severity TEXT, "
            "signals TEXT, context TEXT, action_taken TEXT, downtime_minutes REAL)"
        )
        db.execute("CREATE INDEX ix ON ev (node_id, ts)")
        started = time.perf_counter()
        rows = raw_rows(batch)
        db.executemany("INSERT INTO ev (node_id, ts, kind, severity, signals, context, action_taken, "
                       "downtime_minutes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)  # fmt: skip
        db.commit()
        secs = time.perf_counter() - started
        db.close()
    return secs


def raw_postgres(dsn: str, batch: list[dict[str, Any]]) -> float:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE ev (id bigserial PRIMARY KEY, node_id int, ts timestamptz, kind text, "
            "severity text, signals jsonb, context jsonb, action_taken text, downtime_minutes float8)"
        )
        conn.execute("CREATE INDEX ix ON ev (node_id, ts)")
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY ev (node_id, ts, kind, severity, signals, context, action_taken, downtime_minutes) "
                "FROM STDIN"
            ) as copy,
        ):
            for row in raw_rows(batch):
                copy.write_row((row[0], time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(row[1] / 1e6)),
                                *row[2:]))  # fmt: skip
        conn.commit()
        return time.perf_counter() - started


def post(url: str, headers: dict[str, str], batch: list[dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    body = json.dumps({"events": batch}).encode()
    started = time.perf_counter()
    answer = httpx.post(
        url + "/v1/node-events", content=body, headers={**headers, "content-type": "application/json"},
        timeout=300,
    )  # fmt: skip
    secs = time.perf_counter() - started
    if answer.status_code != 200:
        raise SystemExit(f"import failed: {answer.status_code} {answer.text[:500]}")
    return secs, answer.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    cold, warm = events(args.events, args.nodes, 0), events(args.events, args.nodes, args.events)
    table = Table(title=f"{args.events} node events in one POST /v1/node-events")
    for column in ("backend", "cold POST s", "warm POST s", "resend s", "raw insert s", "warm / raw", "goal"):
        table.add_column(column, justify="right")
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    for backend in backends:
        pg = None if backend == "sqlite" else "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
        pid = None
        try:
            with scratch_server(["ingest"], pg=pg) as server:
                pid, headers = server.pid, server.bearer("ingest")
                first, a = post(server.url, headers, cold)
                second, b = post(server.url, headers, warm)
                third, c = post(server.url, headers, warm)
                assert a["created"] == b["created"] == args.events and c["duplicates"] == args.events
                raw = raw_sqlite(warm) if server.dsn is None else raw_postgres(server.dsn, warm)
        except subprocess.TimeoutExpired:  # the server was slow to stop after its work: stop it hard
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
        ok = max(first, second, third) < 2.0
        table.add_row(backend, f"{first:.2f}", f"{second:.2f}", f"{third:.2f}", f"{raw:.3f}",
                      f"{second / raw:.1f}x", "met" if ok else "MISSED (< 2 s)")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
