"""Forecast use cases: train a forecaster on stored series into the registry, serve a series' forecast
(updating the model with what arrived since training, storing what it served), and score served
forecasts against what happened."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

import forecasting
from forecasting import ForecastingError, create_forecaster
from forecasting.backtest import backtest
from forecasting.interference import InterferenceForecaster
from forecasting.metrics import summarize
from service.errors import Conflict, InvalidInput, NotFound
from service.forecasts import artifacts, batch, frames
from service.forecasts import repository as registry
from service.forecasts.schemas import AccuracyOut, ForecastMeta, ModelOut, SeriesAccuracy
from service.forecasts.served import ServedForecast
from service.models import ModelRecord
from service.models.base import from_epoch_us, to_epoch_us, utcnow
from service.telemetry import repository as telemetry

FORECASTER = "forecaster"
MAX_BACKTEST_CUTOFFS = 48


@dataclass
class TrainRequest:
    selection: frames.Selection = field(default_factory=frames.Selection)
    model: str = forecasting.DEFAULT_MODEL
    config: dict[str, Any] = field(default_factory=dict)
    horizon: int = 12
    window_seconds: float | None = 14 * 86400
    run_backtest: bool = True


def _forecasting_error(error: ForecastingError) -> InvalidInput:
    return InvalidInput(str(error), details=[{"code": getattr(error, "code", "forecasting_error")}])


INTERFERENCE = "interference"
"""Model name of the interference forecaster: trained on a workload's performance series, it forecasts
their degradation ratio (not their values), which the scaling policy reads as lost capacity."""


def build_forecaster(name: str, config: dict[str, Any]) -> Any:
    """A registered forecaster, or the interference forecaster (not in the generic registry: its output is
    a different quantity from its input)."""
    if name == INTERFERENCE:
        return InterferenceForecaster(**config)
    return create_forecaster(name, **config)


def target_of(model_name: str) -> str:
    return "degradation" if model_name == INTERFERENCE else "value"


def _checked_forecaster(request: TrainRequest) -> Any:
    """The configured forecaster, or 422 when `config` has a setting the model does not take."""
    try:
        return build_forecaster(request.model, request.config)
    except ForecastingError as error:
        raise _forecasting_error(error) from error
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"config does not fit model {request.model!r}: {error}") from error


def train(session: Session, request: TrainRequest) -> ModelOut:
    """Fit (and backtest) a forecaster on the selected series; one new registry row, all or nothing."""
    refs, frame, latest = _training_data(session, request, frames.select_series(session, request.selection))
    try:
        model = _checked_forecaster(request).fit(frame)
        metrics = _backtest_metrics(request, frame) if request.run_backtest else {}
    except ForecastingError as error:
        raise _forecasting_error(error) from error
    blob = artifacts.to_bytes(model)
    return _register(
        session, request, refs, frame, latest, blob, list(model.quantiles), metrics, describe_model(model)
    )


def train_per_cluster(
    session: Session, request: TrainRequest, ray_address: str | None = None
) -> list[ModelOut]:
    """One model per cluster of the selection, fitted in parallel as Ray tasks (a local Ray unless
    `ray_address` names a cluster); every registry row is written in the caller's one transaction."""
    by_cluster: dict[str, list[frames.SeriesRef]] = {}
    for ref in frames.select_series(session, request.selection):
        by_cluster.setdefault(ref.entity.split("/", 1)[0], []).append(ref)
    if not by_cluster:
        raise InvalidInput("no series match the selection; list series with GET /v1/series")
    _checked_forecaster(request)
    prepared = {name: _training_data(session, request, refs) for name, refs in sorted(by_cluster.items())}
    try:
        fitted = batch.train_many(
            {name: data[1] for name, data in prepared.items()}, request.model, request.config, ray_address
        )
    except batch.GroupTrainingError as error:
        raise InvalidInput(f"cluster {error.group!r}: {error}") from error
    skipped = {"backtest": "not run in batch training"}
    out = []
    for name, (refs, frame, latest) in prepared.items():
        model = artifacts.from_bytes(fitted[name])
        quantiles, described = list(model.quantiles), describe_model(model)
        out.append(
            _register(session, request, refs, frame, latest, fitted[name], quantiles, skipped, described)
        )
    return out


def describe_model(model: Any) -> dict[str, Any] | None:
    """The model's own account of itself (`auto`: members, weights, validation scores), if it gives one."""
    describe = getattr(model, "describe", None)
    return describe() if callable(describe) else None


def live_description(model: Any) -> dict[str, Any] | None:
    """The model's description when an update changed its weights (`auto` re-chooses them on the newest
    scored forecasts), so the evidence served is the one the forecast was made with; else None."""
    describe = getattr(model, "describe", None)
    if describe is None:
        return None
    described: dict[str, Any] = describe()
    return described if (described.get("online_weights") or {}).get("reweighings") else None


def series_evidence(description: dict[str, Any] | None, entity: str, metric: str) -> dict[str, Any] | None:
    """The part of a model description that explains one series' forecast."""
    if not description or "members" not in description:
        return None
    label = entity if metric == "value" else f"{entity}/{metric}"
    own = description.get("series_weights", {}).get(label)
    validation = description.get("validation", {})
    online = description.get("online_weights") or {}
    return {
        "model": description.get("model"),
        "members": description["members"],
        "weights": own if own is not None else description.get("weights"),
        "weights_are": "this series'" if own is not None else "pooled (the series was not validated)",
        "weights_chosen_on": (
            f"the newest {online.get('evidence_rows')} scored forecasts, up to the one made at "
            f"{online.get('newest_cutoff')}"
            if online.get("reweighings")
            else "the validation window at training"
        ),
        "validation_scores": validation.get("scores"),
        "validation_cutoffs": validation.get("cutoffs"),
        "skipped": description.get("skipped"),
    }


def _training_data(
    session: Session, request: TrainRequest, refs: list[frames.SeriesRef]
) -> tuple[list[frames.SeriesRef], pd.DataFrame, int]:
    if not refs:
        raise InvalidInput("no series match the selection; list series with GET /v1/series")
    _, _, latest = _latest_of(session, refs)
    start_us = None if request.window_seconds is None else latest - int(request.window_seconds * 1e6)
    frame = frames.long_frame(session, refs, after_us=start_us, until_us=latest)
    if frame.empty:
        raise InvalidInput("the selected series have no samples in the training window")
    return refs, frame, latest


def _register(
    session: Session, request: TrainRequest, refs: list[frames.SeriesRef], frame: pd.DataFrame, latest: int,
    artifact: bytes, quantiles: list[float], metrics: dict[str, Any],
    description: dict[str, Any] | None = None,
) -> ModelOut:  # fmt: skip
    record = registry.add_model(
        session,
        ModelRecord(
            kind=FORECASTER, name=request.model, version=registry.next_version(session, request.model),
            params={
                "uid": uuid.uuid4().hex,  # cache identity: ids repeat across databases and restores
                "config": request.config, "horizon": request.horizon,
                "window_seconds": request.window_seconds,
                "quantiles": quantiles,
                "series": [[r.id, r.entity, r.metric] for r in refs],
                **({"description": description} if description is not None else {}),
            },
            metrics=metrics, training_start=frame["ts"].min().to_pydatetime(),
            training_end=from_epoch_us(latest), artifact=artifact,
        ),
    )  # fmt: skip
    registry.assign_series(session, record.id, [(r.id, r.entity) for r in refs])
    return model_out(record)


def _latest_of(session: Session, refs: list[frames.SeriesRef]) -> tuple[int, int, int]:
    stats = [telemetry.series_stats(session, ref.id) for ref in refs]
    lasts = [to_epoch_us(last) for _, _, last in stats if last is not None]
    if not lasts:
        raise InvalidInput("the selected series have no samples yet; ingest telemetry first")
    return len(stats), min(lasts), max(lasts)


def _backtest_metrics(request: TrainRequest, frame: pd.DataFrame) -> dict[str, Any]:
    per_series = frame.groupby(["series_id", "metric"]).size().min()
    step = max(1, math.ceil(per_series * 0.2 / MAX_BACKTEST_CUTOFFS))
    if request.model == INTERFERENCE:  # its forecasts are of degradation, its inputs raw performance
        return {"backtest": "not run: an interference model forecasts degradation, not its input series"}
    result = backtest(create_forecaster(request.model, **request.config), frame, request.horizon, step=step)
    return {key: (None if not math.isfinite(v) else v) for key, v in result.metrics.items()}


def list_models(session: Session) -> list[ModelOut]:
    return [model_out(row) for row in registry.list_models(session)]


def model_out(row: Any) -> ModelOut:
    """The API shape of a registry row (forecasters and policy models alike)."""
    return ModelOut(
        id=row.id, kind=row.kind, name=row.name, version=row.version, params=row.params, metrics=row.metrics,
        training_start=row.training_start, training_end=row.training_end, created_at=row.created_at,
    )  # fmt: skip


def model_name_serving(session: Session, series_id: int) -> str | None:
    """The name of the model that serves the series (None: no model covers it)."""
    found = registry.model_of_series(session, series_id)
    return str(found[0].name) if found is not None else None


def _model_for(session: Session, series_id: int) -> tuple[Any, str]:
    """The registry row serving the series and the entity key the model knows it by."""
    found = registry.model_of_series(session, series_id)
    if found is not None:
        return found
    raise Conflict(
        f"no trained forecaster covers series {series_id}; train one with "
        f"`foresight forecast train --series-id {series_id}` (or select its cluster/metric)"
    )


def _loaded(session: Session, row: Any) -> artifacts.LoadedModel:
    uid = str(row.params.get("uid", row.id))
    cached = artifacts.MODELS.get(uid)
    if cached is not None:
        return cached
    data = registry.artifact_of(session, row.id)
    if data is None:
        raise Conflict(f"model {row.name} v{row.version} has no artifact; train it again")
    loaded = artifacts.LoadedModel(artifacts.from_bytes(data), to_epoch_us(row.training_end))
    return artifacts.MODELS.put(uid, loaded)


def forecast(session: Session, series_id: int, horizon: int) -> ServedForecast:
    """The series' predictive distribution for the next `horizon` steps, stored for later scoring."""
    found = telemetry.get_series(session, series_id)
    if found is None:
        raise NotFound(f"series {series_id} does not exist; list series with GET /v1/series")
    series, _ = found
    row, entity = _model_for(session, series_id)
    refs = [frames.SeriesRef(sid, key, metric, "") for sid, key, metric in row.params["series"]]
    loaded = _loaded(session, row)
    reach = getattr(loaded.model, "max_horizon", None)
    if isinstance(reach, int) and horizon > reach:
        raise InvalidInput(
            f"horizon={horizon} is beyond the {reach} steps model {row.name} v{row.version} forecasts for "
            f"series {series_id}; ask for horizon <= {reach}, or train a model that reaches further: "
            f'POST /v1/models/train {{"model": "{row.name}", "config": {{"max_horizon": {horizon}}}}}',
            details=[{"field": "query.horizon", "problem": f"at most {reach} for this series' model"}],
        )
    with loaded.lock:
        fresh = frames.long_frame(session, refs, after_us=loaded.seen_until_us)
        try:
            if not fresh.empty:
                loaded.model.update(fresh)
                loaded.seen_until_us = to_epoch_us(fresh["ts"].max().to_pydatetime())
                loaded.predictions.clear()
                loaded.live_description = live_description(loaded.model)
            predicted = loaded.predictions.get(horizon)
            if predicted is None:  # nothing new since the last prediction: the same answer, without the work
                frame = loaded.model.predict(horizon)
                predicted = loaded.predictions[horizon] = {
                    key: rows.sort_values("horizon").reset_index(drop=True)
                    for key, rows in frame.groupby(["series", "metric"], sort=False)
                }
        except ForecastingError as error:
            raise _forecasting_error(error) from error
    mine = predicted.get((entity, series.metric))
    if mine is None or mine.empty:
        raise Conflict(f"model {row.name} v{row.version} did not forecast series {series_id}; train it again")
    meta = ForecastMeta(
        series_id=series_id, metric=series.metric, unit=series.unit, model=row.name,
        model_version=row.version, model_id=row.id, cutoff=mine["cutoff"].iloc[0].to_pydatetime(),
        target=target_of(row.name),
        model_evidence=series_evidence(
            loaded.live_description or row.params.get("description"), entity, series.metric
        ),
    )  # fmt: skip
    served = ServedForecast(meta, mine)
    stored_key = (series_id, to_epoch_us(meta.cutoff))
    if stored_key not in loaded.stored:
        if len(loaded.stored) > 100_000:
            loaded.stored.clear()
        loaded.stored.add(stored_key)
        registry.store_forecasts(session, served.stored_rows())
    return served


def accuracy(
    session: Session, series_ids: list[int] | None = None, until: datetime | None = None
) -> AccuracyOut:
    """Coverage and wQL of served forecasts whose targets have been observed (nearest sample within
    half a step of the target time)."""
    stored = registry.forecasts_until(session, series_ids, until or utcnow())
    by_series: dict[int, list[Any]] = {}
    for item in stored:
        by_series.setdefault(item.series_id, []).append(item)
    items = []
    for series_id, rows in sorted(by_series.items()):
        targets = np.array([to_epoch_us(r.ts) for r in rows], dtype=np.int64)
        _, ts_us, values = telemetry.samples_of_series(
            session, [series_id], int(targets.min()) - 86_400_000_000, int(targets.max()) + 86_400_000_000
        )
        observed = _nearest(targets, ts_us, values)
        levels = sorted(rows[0].quantiles, key=float)
        q = np.array([[r.quantiles.get(level, np.nan) for level in levels] for r in rows], dtype=float)
        mean = np.array([r.mean for r in rows], dtype=float)
        summary = summarize(observed, mean, q, [float(level) for level in levels])
        items.append(
            SeriesAccuracy(
                series_id=series_id, scored=int(summary.get("n", 0)), coverage_50=summary.get("coverage_50"),
                coverage_80=summary.get("coverage_80"), coverage_95=summary.get("coverage_95"),
                wql=summary.get("wql"), mae=summary.get("mae"),
            )
        )  # fmt: skip
    return AccuracyOut(items=items)


def _nearest(targets: np.ndarray, ts_us: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The observation nearest each target within half the typical sampling step, else NaN."""
    observed = np.full(len(targets), np.nan)
    if len(ts_us) == 0:
        return observed
    step = float(np.median(np.diff(ts_us))) if len(ts_us) > 1 else 0.0
    right = np.clip(np.searchsorted(ts_us, targets), 0, len(ts_us) - 1)
    left = np.clip(right - 1, 0, len(ts_us) - 1)
    pick = np.where(np.abs(ts_us[left] - targets) <= np.abs(ts_us[right] - targets), left, right)
    close = np.abs(ts_us[pick] - targets) <= step / 2
    observed[close] = values[pick[close]]
    return observed
