"""SQL of forecasts: the model registry (models table) and stored forecasts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import ModelRecord, StoredForecast

MODEL_COLUMNS = (
    ModelRecord.id, ModelRecord.kind, ModelRecord.name, ModelRecord.version, ModelRecord.params,
    ModelRecord.metrics, ModelRecord.training_start, ModelRecord.training_end, ModelRecord.created_at,
)  # fmt: skip


def next_version(session: Session, name: str) -> int:
    return int(session.scalar(select(func.max(ModelRecord.version)).where(ModelRecord.name == name)) or 0) + 1


def add_model(session: Session, record: ModelRecord) -> ModelRecord:
    session.add(record)
    session.flush()
    return record


def list_models(session: Session, kind: str | None = None, limit: int = 100) -> list[Any]:
    """Registry rows without their artifacts, newest first."""
    query = select(*MODEL_COLUMNS).order_by(ModelRecord.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(ModelRecord.kind == kind)
    return list(session.execute(query).all())


def artifact_of(session: Session, model_id: int) -> bytes | None:
    return session.scalar(select(ModelRecord.artifact).where(ModelRecord.id == model_id))


def store_forecasts(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert served forecasts; serving the same one again changes nothing."""
    if not rows:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(StoredForecast).on_conflict_do_nothing(), rows)


def forecasts_until(
    session: Session, series_ids: Sequence[int] | None, until: datetime
) -> list[StoredForecast]:
    """Stored forecasts whose target time has passed (so they can be scored)."""
    query = select(StoredForecast).where(StoredForecast.ts <= until)
    if series_ids:
        query = query.where(StoredForecast.series_id.in_(list(series_ids)))
    return list(session.scalars(query.order_by(StoredForecast.series_id, StoredForecast.ts)))
