"""Forecasts as served (kept so they can be scored later against what actually happened), which model
forecasts each series, and background job runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, JSONDocument, UTCDateTime, utcnow


class StoredForecast(Base):
    """One predicted distribution: a series at a target time, made by a model version at a cutoff.

    `quantiles` maps each level ("0.1") to its value. Re-serving the same forecast is a no-op (primary key).
    """

    __tablename__ = "forecasts"
    __table_args__ = (Index("ix_forecasts_series_ts", "series_id", "ts"),)

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    series_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    horizon: Mapped[int] = mapped_column(Integer)
    mean: Mapped[float] = mapped_column(Float)
    quantiles: Mapped[dict[str, float]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SeriesModel(Base):
    """Which registry model forecasts a series: the newest forecaster trained on it (one row per series,
    replaced when a newer model covers the series), so serving a forecast is one key lookup."""

    __tablename__ = "series_models"
    __table_args__ = (Index("ix_series_models_model", "model_id"),)

    series_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("series.id", ondelete="CASCADE"),
        primary_key=True,
    )
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(400))
    """The entity key the model knows the series by (`cluster/kind/id`)."""


class JobRun(Base):
    """When each background job last ran: read and written under the job's lock, so a job due every
    N seconds runs once per period whichever replica gets there first."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_started: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_finished: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_detail: Mapped[dict[str, object]] = mapped_column(JSONDocument, default=dict)
