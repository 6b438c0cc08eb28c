"""Background job: proposed decisions whose window has passed become `expired` (with an audit entry)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.config import Settings
from service.decisions import service as decisions
from service.jobs import Job


def expire_job(settings: Settings) -> Job:
    return Job("expire_decisions", max(settings.jobs_tick_seconds, 30.0), expire_due)


def expire_due(session: Session, settings: Settings) -> dict[str, Any]:
    return {"expired": decisions.expire_stale(session)}
