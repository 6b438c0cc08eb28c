"""The retraining job: a forecaster is trained again when it is older than the retrain interval or its
live 80% interval coverage has drifted. Only models that still serve a series are retrained (a model
another one replaced stays in the registry as history). Interference models are the control loop's to
refresh (`service/loop/interference.py`): their forecasts are of degradation, not of the series' values,
so their coverage against the series says nothing. The embedded demo trains its own first models
(service/demo/runner.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from service.config import Settings
from service.forecasts import frames
from service.forecasts import repository as registry
from service.forecasts import service as forecasts
from service.jobs import Job
from service.models.base import utcnow

MIN_SCORED = 24  # scored forecast points before coverage drift is trusted
NOMINAL = 0.8


def retrain_job(settings: Settings) -> Job:
    return Job("retrain_forecasters", settings.jobs_tick_seconds, retrain_due)


def retrain_due(session: Session, settings: Settings) -> dict[str, Any]:
    latest: dict[tuple[str, tuple[int, ...]], Any] = {}
    for row in registry.list_models(session, kind=forecasts.FORECASTER, limit=500):
        family = (row.name, tuple(sorted(entry[0] for entry in row.params.get("series", []))))
        latest.setdefault(family, row)  # newest first
    trained: list[dict[str, Any]] = []
    for (name, series_ids), row in latest.items():
        if name == forecasts.INTERFERENCE:  # the control loop refreshes these (see the docstring)
            continue
        if not _serves_any(session, row.id, series_ids):
            continue
        reason = _why_retrain(session, settings, row, list(series_ids))
        if reason is None:
            continue
        params = row.params
        request = forecasts.TrainRequest(
            selection=frames.Selection(series_ids=series_ids), model=row.name,
            config=params.get("config", {}), horizon=params.get("horizon", 12),
            window_seconds=params.get("window_seconds"),
        )  # fmt: skip
        model = forecasts.train(session, request)
        trained.append({"model_id": model.id, "replaces": row.id, "reason": reason})
    return {"trained": trained}


def _serves_any(session: Session, model_id: int, series_ids: tuple[int, ...]) -> bool:
    for series_id in series_ids:
        found = registry.model_of_series(session, series_id)
        if found is not None and found[0].id == model_id:
            return True
    return False


def _why_retrain(session: Session, settings: Settings, row: Any, series_ids: list[int]) -> str | None:
    if utcnow() - row.created_at >= timedelta(seconds=settings.retrain_interval_seconds):
        return "older than the retrain interval"
    scores = [s for s in forecasts.accuracy(session, series_ids).items if s.coverage_80 is not None]
    scored = sum(s.scored for s in scores)
    if scored < MIN_SCORED:
        return None
    coverage = sum((s.coverage_80 or 0.0) * s.scored for s in scores) / scored
    if abs(coverage - NOMINAL) > settings.coverage_drift_tolerance:
        return f"live 80% coverage {coverage:.2f} drifted from {NOMINAL}"
    return None
