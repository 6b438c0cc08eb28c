"""The FastAPI application: routers, the one error handler, middleware and start-up steps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from policies.catalog import load_all as load_all_policies
from service.auth.routes import router as keys_router
from service.config import Settings, get_settings
from service.dashboard.routes import PageAnswer, answer_early
from service.dashboard.routes import router as dashboard_router
from service.db import Database, is_unavailable_error
from service.decisions.jobs import expire_job
from service.decisions.routes import router as decisions_router
from service.demo.runner import DemoRunner
from service.errors import DatabaseUnavailable, ForesightError, InternalError, InvalidInput
from service.forecasts.retrain import retrain_job
from service.forecasts.routes import router as forecasts_router
from service.integrations.routes import router as integrations_router
from service.inventory.routes import router as inventory_router
from service.jobs import Scheduler
from service.loop.jobs import loop_job
from service.loop.routes import router as loop_router
from service.nodes.routes import router as nodes_router
from service.ops.docs import router as docs_router
from service.ops.logging import configure_logging, get_logger
from service.ops.middleware import ErrorGuard, RequestMetricsMiddleware
from service.ops.openapi import document_errors
from service.ops.query import reject_unknown_query
from service.ops.routes import router as ops_router
from service.ops.runtime import tune_garbage_collector
from service.ops.security import RateLimiter, SecurityMiddleware, error_body
from service.power.routes import router as power_router
from service.replays.jobs import replay_watchdog_job
from service.replays.routes import router as replays_router
from service.startup import prepare_database
from service.telemetry.routes import router as telemetry_router
from service.telemetry.schemas import TelemetryBatch

log = get_logger("foresight.app")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for `settings` (default: from the environment)."""
    settings = settings or get_settings()
    load_all_policies()
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings)
        app.state.database = database
        app.state.settings = settings
        prepare_database(database, settings)
        tune_garbage_collector()
        jobs = [retrain_job(settings), expire_job(settings), replay_watchdog_job(settings)]
        schedulers: list[Scheduler | DemoRunner] = []
        if settings.jobs_enabled:
            schedulers.append(Scheduler(database, settings, jobs))
            if settings.loop_enabled:
                schedulers.append(Scheduler(database, settings, [loop_job(settings)], name="foresight-loop"))
        if settings.jobs_enabled and settings.load_sample_data and settings.demo_stream:
            schedulers.append(DemoRunner(database))  # streams and trains only when the demo was set up
        for scheduler in schedulers:
            scheduler.start()
        yield
        for scheduler in schedulers:
            scheduler.stop()
        database.dispose()

    app = FastAPI(
        title="Foresight",
        version="0.1.0",
        summary="Predictive resource manager: telemetry in, calibrated forecasts and explained decisions out",
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query)],
        docs_url=None,  # served from bundled assets (service/ops/docs.py): /docs works offline
        redoc_url=None,
    )
    limiter = RateLimiter(settings)
    app.state.rate_limiter = limiter
    app.add_middleware(ErrorGuard)  # innermost: its JSON 500 passes through the headers and the metrics
    app.add_middleware(SecurityMiddleware, settings=settings, limiter=limiter)  # 429/413 are counted
    app.add_middleware(RequestMetricsMiddleware)
    app.include_router(ops_router)
    app.include_router(docs_router)
    app.include_router(telemetry_router)
    app.include_router(forecasts_router)
    app.include_router(inventory_router)
    app.include_router(decisions_router)
    app.include_router(loop_router)
    app.include_router(nodes_router)
    app.include_router(replays_router)
    app.include_router(power_router)
    app.include_router(integrations_router)
    app.include_router(keys_router)
    app.include_router(dashboard_router)
    _register_error_handlers(app, settings)
    _document_batch_schema(app)
    document_errors(app)
    return app


def _register_error_handlers(app: FastAPI, settings: Settings) -> None:
    app.add_exception_handler(PageAnswer, answer_early)  # dashboard: login redirect / 403 page

    def answer(
        request: Request, error: ForesightError, headers: Mapping[str, str] | None = None
    ) -> JSONResponse:
        body = error_body(error, request.scope)
        return JSONResponse(
            body, status_code=error.status_code, headers={**error.headers(), **(headers or {})}
        )

    @app.exception_handler(ForesightError)
    async def foresight_error(request: Request, error: ForesightError) -> JSONResponse:
        return answer(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        """Framework errors (unparsable body, unknown route, wrong method) in the service's error format."""
        framework = ForesightError(str(error.detail))
        framework.status_code = error.status_code
        framework.code = {400: "malformed_request", 404: "not_found", 405: "method_not_allowed"}.get(
            error.status_code, "http_error"
        )
        return answer(request, framework, error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(part) for part in item["loc"]), "problem": _problem(item)}
            for item in error.errors()
        ]
        first = details[0] if details else {"field": "request", "problem": "invalid"}
        return answer(request, InvalidInput(f"{first['field']}: {first['problem']}", details=details))

    @app.exception_handler(OverflowError)
    @app.exception_handler(exc.DataError)
    async def out_of_range(request: Request, error: Exception) -> JSONResponse:
        """A number too large for the database or a time computation: the input's fault, not a 500."""
        log.info("value_out_of_range", error_type=type(error).__name__)
        message = "a number in the request is out of range (too large for a time, an id or the database)"
        return answer(request, InvalidInput(message))

    @app.exception_handler(exc.SQLAlchemyError)
    async def database_error(request: Request, error: exc.SQLAlchemyError) -> JSONResponse:
        if is_unavailable_error(error):
            unavailable = DatabaseUnavailable(
                "the database is unavailable or busy; nothing was written, retry later",
                retry_after=settings.retry_after_seconds,
            )
            return answer(request, unavailable)
        log.error("database_error", error_type=type(error).__name__)
        return answer(request, InternalError("internal database error; nothing was written"))


def _problem(item: Mapping[str, Any]) -> str:
    """pydantic's message, with an unknown field said plainly (extra="forbid")."""
    if item.get("type") == "extra_forbidden":
        return "unknown field; remove it (check its spelling)"
    return str(item["msg"]).removeprefix("Value error, ")


def _document_batch_schema(app: FastAPI) -> None:
    """The ingest route reads its body itself; put the batch schema into OpenAPI for clients and fuzzers."""
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        batch_schema = TelemetryBatch.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in batch_schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components["TelemetryBatch"] = batch_schema
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
