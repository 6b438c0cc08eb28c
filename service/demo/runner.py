"""The demo at run time, in one background thread of the process that holds the demo lock:

1. the first models, small and fast: `seasonal_naive` per sampling step (no backtest), so every demo
   series has a forecast within seconds of start; then the causal mitigation model on the event history;
   then the default forecaster per sampling step, with its backtest, replacing the first ones;
2. the live stream: every tick, the samples whose time has come go through the ingest path (one batch),
   a new node event opens now and then, and open events end after a while (their outcome joins the
   history the mitigation model retrains on).

The control loop (a separate job) decides for all of it; the demo only produces telemetry and events.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import forecasting
from service.db import Database
from service.demo import catalog, clock, setup
from service.forecasts import frames
from service.forecasts import repository as registry
from service.forecasts import service as forecasts
from service.jobs import exclusive
from service.models.base import to_epoch_us
from service.nodes import repository as node_repo
from service.nodes import service as nodes
from service.nodes.schemas import MitigationTrainRequest
from service.ops.logging import get_logger
from service.telemetry import repository as telemetry
from service.telemetry import service as ingest

log = get_logger("foresight.demo")
FIRST_MODEL = "seasonal_naive"
OPEN_EVENT_EVERY_SECONDS = 900.0
RESOLVE_AFTER_SECONDS = 600.0
MAX_CATCH_UP = 5_000
MITIGATION_TREES = 40


class DemoRunner:
    """Start/stop like the job scheduler; does nothing when the database holds no demo."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.settings = database.settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="foresight-demo", daemon=True)
        self.timings: dict[str, float] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        lock: AbstractContextManager[bool] = exclusive(self.database, "demo")
        try:
            with lock as held:
                if not held:
                    return  # another process streams the demo
                tracks = self._tracks()
                if tracks is None:
                    return
                self._stream_once(tracks)  # catch up with the time the server was down
                models = threading.Thread(target=self._models, name="foresight-demo-models", daemon=True)
                models.start()
                self._stream(tracks)
        except Exception as error:  # the demo must never take the server down
            log.error("demo_stopped", error_type=type(error).__name__, error=str(error)[:300])

    def _tracks(self) -> list[clock.Track] | None:
        with self.database.session() as session:
            saved = setup.state(session)
            if saved is None:
                return None
            speed = float(self.settings.demo_speed)
            now = time.time()
            tracks = []
            for s in catalog.all_series():
                anchor, step = saved["tracks"].get(s.key, [None, None])
                if anchor is None:
                    continue
                tracks.append(clock.resumed_track(s, anchor, step, _last_ts(session, s), now, speed))
            setup.save_state(session, speed, tracks)
        return tracks

    # the stream ---------------------------------------------------------------------------------------

    def _stream(self, tracks: list[clock.Track]) -> None:
        tick = max(1.0, min(t.step for t in tracks) / 2)
        next_event = time.time() + OPEN_EVENT_EVERY_SECONDS / self.settings.demo_speed
        seed = setup.HISTORY_EVENTS + 1
        while not self._stop.wait(tick):
            try:
                self._stream_once(tracks)
                if time.time() >= next_event:
                    next_event = time.time() + OPEN_EVENT_EVERY_SECONDS / self.settings.demo_speed
                    self._events(seed)
                    seed += 1
            except Exception as error:  # a busy database: try again next tick
                log.warning("demo_tick_failed", error_type=type(error).__name__, error=str(error)[:300])

    def _stream_once(self, tracks: list[clock.Track]) -> int:
        now = time.time()
        items = [(t.series, t.due(now, MAX_CATCH_UP)) for t in tracks]
        if not any(samples for _, samples in items):
            return 0
        with self.database.session() as session:
            return ingest.ingest_document(session, setup.document(items), self.settings).accepted

    def _events(self, seed: int) -> None:
        names = setup.gpu_nodes()
        with self.database.session() as session:
            older = datetime.now(UTC) - timedelta(seconds=RESOLVE_AFTER_SECONDS / self.settings.demo_speed)
            setup.resolve_events(session, older, seed)
            setup.open_event(session, names[seed % len(names)], time.time(), seed)

    # the models ---------------------------------------------------------------------------------------

    def _models(self) -> None:
        started = time.monotonic()
        try:
            groups = self._groups()
            for ids in groups:
                self._train(ids, FIRST_MODEL, backtest=False, only_uncovered=True)
            self.timings["first_models"] = time.monotonic() - started
            log.info("demo_first_models", seconds=round(self.timings["first_models"], 2))
            with self.database.session() as session:
                setup.ensure_events(session, time.time())
            with self.database.session() as session:
                if node_repo.latest_mitigation_model(session) is None:
                    nodes.train(session, MitigationTrainRequest(n_estimators=MITIGATION_TREES))
            log.info("demo_mitigation_model", seconds=round(time.monotonic() - started, 2))
            for ids in groups:
                if self._stop.is_set():
                    return
                self._train(ids, forecasting.DEFAULT_MODEL, backtest=True, only_uncovered=False)
            log.info("demo_refined_models", seconds=round(time.monotonic() - started, 2))
        except Exception as error:
            log.error("demo_models_failed", error_type=type(error).__name__, error=str(error)[:300])

    def _groups(self) -> list[tuple[int, ...]]:
        """Demo series ids grouped by sampling step: one model per step serves each group."""
        with self.database.session() as session:
            by_step: dict[float, list[int]] = {}
            for s in catalog.all_series():
                sid = _series_id(session, s)
                if sid is not None:
                    by_step.setdefault(s.step_seconds, []).append(sid)
        return [tuple(ids) for _, ids in sorted(by_step.items())]

    def _train(self, ids: tuple[int, ...], model: str, backtest: bool, only_uncovered: bool) -> None:
        with self.database.session() as session:
            serving = [registry.model_of_series(session, i) for i in ids]
            if only_uncovered and all(found is not None for found in serving):
                return
            if not only_uncovered and all(f is not None and f[0].name == model for f in serving):
                return
            request = forecasts.TrainRequest(selection=frames.Selection(series_ids=ids), model=model,
                                             run_backtest=backtest)  # fmt: skip
            trained = forecasts.train(session, request)
        log.info("demo_model_trained", model=model, model_id=trained.id, series=len(ids))


def _series_id(session: Any, s: catalog.DemoSeries) -> int | None:
    query = telemetry.series_query(
        cluster=catalog.CLUSTER, entity_kind=s.kind, entity_id=s.entity, metric=s.metric
    )
    rows, _ = telemetry.list_series(session, query, 1, 0)
    return int(rows[0][0].id) if rows else None


def _last_ts(session: Any, s: catalog.DemoSeries) -> float | None:
    sid = _series_id(session, s)
    if sid is None:
        return None
    _, _, last = telemetry.series_stats(session, sid)
    return None if last is None else to_epoch_us(last) / 1e6
