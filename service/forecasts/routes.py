"""HTTP routes of forecasts: serve a series' forecast, live accuracy, the model registry, training."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

import forecasting
from service.auth.schemas import Principal
from service.deps import SessionDep, require
from service.forecasts import frames
from service.forecasts import service as forecasts
from service.forecasts.schemas import AccuracyOut, ForecastOut, ModelOut
from service.forecasts.served import to_api
from service.names import Name, ShortName
from service.telemetry.schemas import EntityKind

router = APIRouter(prefix="/v1", tags=["forecasts"])
Read = Annotated[Principal, Depends(require("read"))]
Operate = Annotated[Principal, Depends(require("operate"))]


@router.get(
    "/forecasts",
    response_model=ForecastOut,
    summary="Quantile forecast of a series (409 when no trained model covers it)",
    responses={
        409: {"description": "No trained forecaster covers the series; the message says how to train"}
    },
)
def get_forecast(
    _: Read,
    session: SessionDep,
    series: Annotated[int, Query(description="Series id")],
    horizon: Annotated[int, Query(ge=1, le=10_000, description="Steps ahead")] = 12,
) -> ForecastOut:
    return to_api(forecasts.forecast(session, series, horizon))


@router.get("/forecasts/accuracy", response_model=AccuracyOut, summary="Live coverage and wQL per series")
def get_accuracy(
    _: Read, session: SessionDep, series: Annotated[list[int] | None, Query(description="Series ids")] = None
) -> AccuracyOut:
    return forecasts.accuracy(session, series)


@router.get("/models", response_model=list[ModelOut], summary="The model registry, newest first")
def list_models(_: Read, session: SessionDep) -> list[ModelOut]:
    return forecasts.list_models(session)


class TrainBody(BaseModel):
    """What to train on which series; an unknown field (a typo like `series_id`) is a 422, never a
    fleet-wide training on every series."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: ShortName = Field(default=forecasting.DEFAULT_MODEL, description="A registered forecaster name")
    config: dict[str, Any] = Field(default_factory=dict, description="Constructor settings of the model")
    horizon: int = Field(default=12, ge=1, le=10_000)
    window_seconds: float | None = Field(default=14 * 86400, gt=0)
    backtest: bool = True
    series_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(default_factory=list, max_length=100_000)
    cluster: Name | None = None
    entity_kind: EntityKind | None = None
    entity_id: Name | None = None
    metric: Name | None = None


@router.post("/models/train", response_model=ModelOut, status_code=201, summary="Train a forecaster now")
def train_model(_: Operate, session: SessionDep, body: TrainBody) -> ModelOut:
    selection = frames.Selection(
        tuple(body.series_ids), body.cluster, body.entity_kind, body.entity_id, body.metric
    )
    request = forecasts.TrainRequest(
        selection=selection, model=body.model, config=body.config, horizon=body.horizon,
        window_seconds=body.window_seconds, run_backtest=body.backtest,
    )  # fmt: skip
    return forecasts.train(session, request)
