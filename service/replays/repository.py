"""SQL of replay runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from service.models import ReplayRun


def add(session: Session, row: ReplayRun) -> ReplayRun:
    session.add(row)
    session.flush()
    return row


def get(session: Session, run_id: int) -> ReplayRun | None:
    return session.get(ReplayRun, run_id)


Listed = tuple[ReplayRun, bool, bool]
"""A run with whether it has a report and a timeline (the blobs themselves stay in the database)."""


def _listed() -> Select[ReplayRun, bool, bool]:
    return select(ReplayRun, ReplayRun.report_gz.is_not(None), ReplayRun.timeline_gz.is_not(None))


def get_listed(session: Session, run_id: int) -> Listed | None:
    row = session.execute(_listed().where(ReplayRun.id == run_id)).first()
    return (row[0], bool(row[1]), bool(row[2])) if row else None


def page(session: Session, limit: int, offset: int) -> tuple[list[Listed], int]:
    total = session.scalar(select(func.count()).select_from(ReplayRun)) or 0
    rows = session.execute(_listed().order_by(ReplayRun.id.desc()).limit(limit).offset(offset)).all()
    return [(r[0], bool(r[1]), bool(r[2])) for r in rows], int(total)


def set_progress(session: Session, run_id: int, progress: float, now: datetime) -> None:
    session.execute(
        update(ReplayRun)
        .where(ReplayRun.id == run_id, ReplayRun.status == "running")
        .values(progress=progress, heartbeat_at=now)
    )


def stale(session: Session, before: datetime) -> list[ReplayRun]:
    """Runs that stopped reporting progress (their process died): they will never finish."""
    query = select(ReplayRun).where(
        ReplayRun.status.in_(("queued", "running")),
        func.coalesce(ReplayRun.heartbeat_at, ReplayRun.created_at) < before,
    )
    return list(session.scalars(query).all())
