"""Background job: replays whose process died (no heartbeat for 10 minutes) are marked failed."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.config import Settings
from service.jobs import Job
from service.models import ReplayRun
from service.replays import repository as repo

STALE_SECONDS = 600.0


def replay_watchdog_job(settings: Settings) -> Job:
    return Job("replay_watchdog", max(settings.jobs_tick_seconds, 60.0), fail_stale)


def fail_stale(session: Session, settings: Settings) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    rows: list[ReplayRun] = repo.stale(session, now - timedelta(seconds=STALE_SECONDS))
    for row in rows:
        row.status, row.finished_at = "failed", now
        row.error = "interrupted: the process running it stopped before it finished; start it again"
    return {"failed": [r.id for r in rows]}
