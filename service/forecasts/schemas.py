"""API schemas of forecasts and the model registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ForecastPoint(BaseModel):
    timestamp: datetime
    horizon: int = Field(description="Steps ahead of the cutoff (1 = the next step).")
    mean: float
    quantiles: dict[str, float] = Field(description='Level -> value, e.g. {"0.1": 12.0, "0.9": 20.5}.')


class ForecastMeta(BaseModel):
    """Which series a forecast is of, which model made it, and from which cutoff."""

    series_id: int
    metric: str
    unit: str
    model: str
    model_version: int
    model_id: int
    cutoff: datetime = Field(description="The last observation time the forecast used.")
    target: str = Field(
        default="value",
        description="What the quantiles are of: `value` (the series itself) or `degradation` (an "
        "interference model's performance-degradation ratio d; capacity scales by 1 - d)",
    )
    model_evidence: dict[str, Any] | None = Field(
        default=None,
        description="Why the model forecasts as it does, when it says (the `auto` model: its ensemble "
        "members, this series' weights, and every member's validation scores before training ended)",
    )


class ForecastOut(ForecastMeta):
    points: list[ForecastPoint]


class ModelOut(BaseModel):
    id: int
    kind: str
    name: str
    version: int
    params: dict[str, Any]
    metrics: dict[str, Any]
    training_start: datetime | None
    training_end: datetime | None
    created_at: datetime


class SeriesAccuracy(BaseModel):
    """Live accuracy of served forecasts against what happened (only targets already observed)."""

    series_id: int
    scored: int = Field(description="Forecast points matched with an observation.")
    coverage_50: float | None
    coverage_80: float | None
    coverage_95: float | None
    wql: float | None
    mae: float | None


class AccuracyOut(BaseModel):
    items: list[SeriesAccuracy]
