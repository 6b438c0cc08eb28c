"""Background jobs. Any number of replicas may run the scheduler: a job runs under an exclusive lock
(a Postgres advisory lock; a file lock next to an SQLite database), checks inside the lock whether it
is due (the `job_runs` table), and does its work and records the run in one transaction, so each
period's run happens once and a run that dies half-way leaves nothing behind."""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import Database
from service.models import JobRun
from service.models.base import utcnow
from service.ops.logging import get_logger

log = get_logger("foresight.jobs")
FIRST_PASS_SECONDS = 5.0


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[Session, Settings], dict[str, Any]] | None = None
    """The work of an exclusive job, in one unit of work."""
    shared: Callable[[Database], dict[str, Any]] | None = None
    """A job whose work replicas share (row claims, not the job lock): on Postgres every replica runs it
    each period with its own units of work; on SQLite one process does (the file lock)."""


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock."""
    return int.from_bytes(hashlib.sha256(f"foresight-job:{name}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def exclusive(database: Database, name: str) -> Iterator[bool]:
    """Yields True when this process holds the job's lock (never blocks)."""
    if database.dialect == "postgresql":
        with database.engine.connect() as connection:
            held = bool(
                connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(name)}).scalar()
            )
            connection.commit()
            try:
                yield held
            finally:
                if held:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(name)})
                    connection.commit()
        return
    path = Path(make_url(database.engine.url).database or "foresight").with_suffix(f".{name}.lock")
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_if_due(database: Database, settings: Settings, job: Job) -> str:
    """ "ran", "failed", "not_due" or "locked" (another replica is running it)."""
    if job.shared is not None:
        return _run_shared(database, job, job.shared)
    assert job.run is not None, f"job {job.name} has neither run nor shared work"
    with exclusive(database, job.name) as held:
        if not held:
            return "locked"
        now = utcnow()
        with database.session() as session:
            last = session.get(JobRun, job.name)
            if (
                last
                and last.last_finished
                and now - last.last_finished < timedelta(seconds=job.every_seconds)
            ):
                return "not_due"
        try:
            with database.session() as session:
                detail = job.run(session, settings)
                _record(session, job.name, now, "ok", detail)
        except Exception as error:
            log.error("job_failed", job=job.name, error_type=type(error).__name__, error=str(error)[:500])
            with database.session() as session:
                _record(session, job.name, now, "failed", {"error": type(error).__name__})
            return "failed"
        log.info("job_ran", job=job.name, **{k: v for k, v in detail.items() if k != "job"})
        return "ran"


def _run_shared(database: Database, job: Job, work: Callable[[Database], dict[str, Any]]) -> str:
    if database.dialect == "postgresql":
        return _logged(job, work, database)
    with exclusive(database, job.name) as held:
        return _logged(job, work, database) if held else "locked"


def _logged(job: Job, work: Callable[[Database], dict[str, Any]], database: Database) -> str:
    try:
        detail = work(database)
    except Exception as error:
        log.error("job_failed", job=job.name, error_type=type(error).__name__, error=str(error)[:500])
        return "failed"
    if detail.get("claimed") or detail.get("retried") or detail.get("outcomes"):
        log.info("job_ran", job=job.name, **detail)
    return "ran"


def _record(session: Session, name: str, started: Any, status: str, detail: dict[str, Any]) -> None:
    row = session.get(JobRun, name) or JobRun(name=name)
    row.last_started, row.last_finished, row.last_status, row.last_detail = started, utcnow(), status, detail
    session.add(row)


class Scheduler:
    """A daemon thread that runs due jobs every tick until stopped."""

    def __init__(
        self, database: Database, settings: Settings, jobs: list[Job], name: str = "foresight-jobs"
    ) -> None:
        self.database, self.settings, self.jobs = database, settings, jobs
        self.tick = min([settings.jobs_tick_seconds, *(job.every_seconds for job in jobs)])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        delay = min(FIRST_PASS_SECONDS, self.tick)  # a fresh install gets going soon
        while not self._stop.wait(delay):
            delay = self.tick
            for job in self.jobs:
                try:
                    run_if_due(self.database, self.settings, job)
                except Exception as error:
                    log.warning("job_skipped", job=job.name, error_type=type(error).__name__)
