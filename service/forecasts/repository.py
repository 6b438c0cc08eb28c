"""SQL of forecasts: the model registry (models table), which model serves each series, and stored
forecasts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import ModelRecord, SeriesModel, StoredForecast

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


def assign_series(session: Session, model_id: int, series: Sequence[tuple[int, str]]) -> None:
    """Make `model_id` the model serving each (series id, entity key); a newer model replaces an older."""
    ids = [series_id for series_id, _ in series]
    for start in range(0, len(ids), 500):
        session.execute(delete(SeriesModel).where(SeriesModel.series_id.in_(ids[start : start + 500])))
    session.add_all(SeriesModel(series_id=s, model_id=model_id, entity=e) for s, e in series)
    session.flush()


def model_of_series(session: Session, series_id: int) -> tuple[Any, str] | None:
    """The registry row (without artifact) serving `series_id` and the entity key it knows it by."""
    row = session.execute(
        select(*MODEL_COLUMNS, SeriesModel.entity)
        .join(SeriesModel, SeriesModel.model_id == ModelRecord.id)
        .where(SeriesModel.series_id == series_id)
    ).first()
    return (row, str(row.entity)) if row is not None else None


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
