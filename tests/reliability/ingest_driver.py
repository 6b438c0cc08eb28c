"""A multi-client ingest run with a database outage staged in the middle, and the ledger that proves
nothing was lost: every batch is numbered, its samples are unique, clients retry refused batches
(503 + Retry-After, 429, or a connection error) until a deadline, and `verify` counts what Postgres
holds per batch. Shared by tests/reliability/test_faults.py and bench/faults.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from service import migrate
from service.auth import service as auth_service
from service.config import Settings
from service.db import Database

T0 = 1_700_000_000  # epoch seconds of the first sample; samples are 10 s apart
STEP = 10
RETRYABLE = {429, 503}
RETRYABLE_TEXT = {str(code) for code in RETRYABLE}


@dataclass
class BatchLog:
    """What one client saw for one batch, across its attempts."""

    client: int
    index: int
    statuses: list[str] = field(default_factory=list)  # "200", "503", "connection", …
    retry_after: list[str] = field(default_factory=list)  # Retry-After of each refusal that had one
    accepted: int = 0
    duplicates: int = 0
    done: bool = False

    @property
    def refused(self) -> bool:
        return any(status != "200" for status in self.statuses)


@dataclass
class Shape:
    clients: int = 4
    batches: int = 80  # per client
    series: int = 4  # per client (every batch carries all of them)
    samples: int = 25  # per series per batch
    give_up_seconds: float = 90.0  # a batch still refused after this counts as failed
    retry_cap_seconds: float = 1.0  # honour Retry-After up to this (keeps a test short)

    def batch(self, client: int, index: int) -> dict[str, Any]:
        first = index * self.samples
        return {
            "series": [
                {
                    "entity": {"kind": "node", "id": f"fault-c{client}-s{s}", "cluster": "faults"},
                    "metric": "cpu_utilization", "unit": "%",
                    "samples": [
                        [T0 + (first + i) * STEP, value_of(client, s, first + i)] for i in range(self.samples)
                    ],
                }
                for s in range(self.series)
            ]
        }  # fmt: skip


def write_env(workdir: Path, database_url: str, **settings: object) -> None:
    """Settings for a `foresight serve` started in `workdir` (pydantic-settings reads `.env` there), so
    tests/test_startup.py's `_serve` starts it unchanged."""
    values: dict[str, object] = {
        "database_url": database_url, "load_sample_data": False, "bootstrap_admin_key": False,
        "jobs_enabled": False, "retry_after_seconds": 1, "db_connect_timeout_seconds": 2,
        "log_level": "WARNING",
    }  # fmt: skip
    values.update(settings)
    lines = [f"FORESIGHT_{name.upper()}={str(value).lower() if isinstance(value, bool) else value}"
             for name, value in values.items()]  # fmt: skip
    (workdir / ".env").write_text("\n".join(lines) + "\n")


def migrate_and_key(database_url: str, *scopes: str) -> str:
    """Bring a fresh database to head (as `foresight db upgrade` does) and create an API key."""
    database = Database(Settings(database_url=database_url, log_level="WARNING"))
    try:
        migrate.upgrade(database.engine)
        with database.session() as session:
            return auth_service.create_key(session, "reliability", list(scopes or ("admin",))).key
    finally:
        database.dispose()


def value_of(client: int, series: int, position: int) -> float:
    return float((client * 7 + series * 13 + position) % 100)


class IngestRun:
    """Clients in threads, each sending its batches in order and retrying refusals; `accepted_batches`
    lets a controller stage an outage once the run is under way."""

    def __init__(self, url: str, key: str, shape: Shape) -> None:
        self.url, self.key, self.shape = url, key, shape
        self.logs = {(c, b): BatchLog(c, b) for c in range(shape.clients) for b in range(shape.batches)}
        self.lock = threading.Lock()
        self.accepted_batches = 0
        self.refusals = 0
        self.first_200_after: dict[float, float] = {}  # mark -> monotonic time of the first 200 after it
        self._marks: list[float] = []
        self.threads = [threading.Thread(target=self._client, args=(c,)) for c in range(shape.clients)]

    def start(self) -> IngestRun:
        for thread in self.threads:
            thread.start()
        return self

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self.threads)

    def mark(self) -> float:
        """Remember now; `first_200_after[mark]` becomes the time of the next accepted batch."""
        now = time.monotonic()
        with self.lock:
            self._marks.append(now)
        return now

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline or not any(t.is_alive() for t in self.threads):
                return condition()
            time.sleep(0.02)
        return True

    def until_accepted(self, batches: int, timeout: float) -> bool:
        return self.wait_for(lambda: self.accepted_batches >= batches, timeout)

    def until_refused(self, refusals: int, timeout: float) -> bool:
        return self.wait_for(lambda: self.refusals >= refusals, timeout)

    def until_accepted_after(self, mark: float, timeout: float) -> bool:
        """True once a batch was accepted after `mark` (see `mark()`)."""
        return self.wait_for(lambda: mark in self.first_200_after, timeout)

    def _client(self, client: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, timeout=15, headers=headers) as http:
            for index in range(self.shape.batches):
                self._send(http, self.logs[(client, index)], self.shape.batch(client, index))

    def _send(self, http: httpx.Client, log: BatchLog, body: dict[str, Any]) -> None:
        deadline = time.monotonic() + self.shape.give_up_seconds
        while time.monotonic() < deadline:
            try:
                answer = http.post("/v1/telemetry", json=body)
            except httpx.TransportError as error:  # refused, reset, timed out: outcome unknown, resend
                log.statuses.append("connection:" + type(error).__name__)
                self._refused()
                time.sleep(0.2)
                continue
            log.statuses.append(str(answer.status_code))
            if answer.status_code == 200:
                result = answer.json()
                log.accepted += result["accepted"]
                log.duplicates += result["duplicates"]
                log.done = True
                with self.lock:
                    self.accepted_batches += 1
                    now = time.monotonic()
                    for mark in self._marks:
                        self.first_200_after.setdefault(mark, now)
                return
            if answer.status_code not in RETRYABLE:
                return  # a 4xx or a 500: recorded, never retried; the checks report it
            retry_after = answer.headers.get("retry-after")
            if retry_after is not None:
                log.retry_after.append(retry_after)
            self._refused()
            time.sleep(min(float(retry_after or 1), self.shape.retry_cap_seconds))

    def _refused(self) -> None:
        with self.lock:
            self.refusals += 1

    def summary(self) -> dict[str, Any]:
        logs = list(self.logs.values())
        statuses = [s for log in logs for s in log.statuses]
        return {
            "batches": len(logs),
            "accepted_first_try": sum(1 for log in logs if log.done and not log.refused),
            "refused_then_retried": sum(1 for log in logs if log.done and log.refused),
            "never_accepted": sum(1 for log in logs if not log.done),
            "attempts": len(statuses),
            "answers_500": sum(1 for s in statuses if s.startswith("5") and s != "503"),
            "answers_other_4xx": sum(1 for s in statuses if s.startswith("4") and s != "429"),
            "answers_503_or_429": sum(1 for s in statuses if s in RETRYABLE_TEXT),
            "connection_errors": sum(1 for s in statuses if s.startswith("connection")),
            "refusals_without_retry_after": sum(
                sum(1 for s in log.statuses if s in RETRYABLE_TEXT) - len(log.retry_after) for log in logs
            ),
            "in_doubt_commits": sum(1 for log in logs if log.done and log.duplicates > 0),
        }


def verify(connection: psycopg.Connection, shape: Shape, run: IngestRun) -> dict[str, Any]:
    """Count the stored samples of every batch: each accepted batch must be there exactly once with the
    values sent, and nothing of a batch that was never accepted."""
    rows = connection.execute(
        "SELECT s.entity_name, floor((extract(epoch FROM x.ts) - %s) / %s)::bigint AS position,"
        " x.value FROM samples x JOIN series s ON s.id = x.series_id WHERE s.entity_name LIKE 'fault-c%%'",
        (T0, STEP),
    ).fetchall()
    stored: dict[tuple[int, int], int] = {}
    wrong_values = 0
    for name, position, value in rows:
        client, series = (int(part[1:]) for part in name.removeprefix("fault-").split("-"))
        key = (client, int(position) // shape.samples)
        stored[key] = stored.get(key, 0) + 1
        wrong_values += value != value_of(client, series, int(position))
    per_batch = shape.series * shape.samples
    lost = sum(per_batch - min(stored.get(key, 0), per_batch) for key, log in run.logs.items() if log.done)
    extra = sum(count for key, count in stored.items() if key in run.logs and not run.logs[key].done)
    return {
        "samples_sent_accepted": per_batch * sum(1 for log in run.logs.values() if log.done),
        "samples_stored": len(rows),
        "samples_lost": lost,
        "samples_of_unaccepted_batches_stored": extra,
        "wrong_values": wrong_values,
        "stored_more_than_once": len(rows) - len({(name, position) for name, position, _ in rows}),
        "unexpected_rows": len(rows) - sum(stored.get(key, 0) for key in run.logs),
    }
