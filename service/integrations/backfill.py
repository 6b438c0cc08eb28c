"""Backfill from Prometheus: pull history through its HTTP API in chunks and store it like remote-write
(same label mapping, so backfilled and streamed series are the same series).

Raw mode (the default) asks for a range vector `match[chunk]` at each chunk's end: the samples exactly as
Prometheus stored them, original timestamps included. Step mode (`step`) uses `query_range`, evaluated
every `step` seconds (resampled: smaller and regular, but not the raw history). Each chunk is one
transaction, and progress is saved after each, so an interrupted backfill resumes where it stopped; a
finished one, run again, catches up from where it ended. Resent samples are duplicates, never stored twice.
Prometheus does not return its external labels with query results, so they are read from its
configuration (or given with the source) and added, as remote-write would.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import httpx
import numpy as np
import yaml

from service.config import Settings
from service.db import Database
from service.errors import ForesightError
from service.integrations import retry
from service.integrations.convert import RawBatch
from service.integrations.receive import store
from service.integrations.sources import Progress, Source, SourceStore

RETRIES = 4


class SourceError(ForesightError):
    """The source (Prometheus) refused or failed a query."""

    status_code = 502
    code = "source_error"


@dataclass
class Window:
    start: float  # epoch seconds, exclusive for raw chunks after the first
    end: float
    chunk_seconds: float
    step_seconds: float | None = None


@dataclass
class BackfillReport:
    source: str
    start: float
    end: float
    chunks: int
    samples: int
    accepted: int
    duplicates: int
    dropped: dict[str, int]
    resumed: bool


class PrometheusClient:
    """The few Prometheus HTTP API calls backfill needs, retried on 429, 5xx and connection errors: after
    the server's Retry-After when it gives one, else after exponential backoff with full jitter."""

    def __init__(
        self,
        source: Source,
        timeout: float = 120.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {source.token()}"} if source.token() else {}
        self.http = httpx.Client(base_url=source.url.rstrip("/"), headers=headers, timeout=timeout)
        self.sleep = sleep
        self.rng = rng or random.Random()

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, params: dict[str, Any]) -> Any:
        for attempt in range(RETRIES):
            answer: httpx.Response | None = None
            try:
                answer = self.http.get(path, params=params)
            except httpx.HTTPError as error:
                if attempt == RETRIES - 1:
                    raise SourceError(f"cannot reach Prometheus at {self.http.base_url}: {error}") from error
            else:
                if not retry.should_retry(answer):
                    return self._data(answer, params)
                if attempt == RETRIES - 1:
                    raise SourceError(f"Prometheus answered {answer.status_code}: {answer.text[:300]}")
            self.sleep(retry.delay(attempt, answer, self.rng))
        raise AssertionError("unreachable")

    def _data(self, answer: httpx.Response, params: dict[str, Any]) -> Any:
        try:
            body = answer.json()
        except ValueError as error:
            raise SourceError(f"Prometheus answered {answer.status_code} without JSON") from error
        if answer.status_code >= 400 or body.get("status") != "success":
            raise SourceError(
                f"Prometheus refused {params.get('query', '')!r}: {body.get('error', answer.text)}"
            )
        return body["data"]

    def external_labels(self) -> dict[str, str]:
        """`global.external_labels` of the server's configuration ({} when it cannot be read)."""
        try:
            config = yaml.safe_load(self.get("/api/v1/status/config", {}).get("yaml", "")) or {}
        except (SourceError, yaml.YAMLError):
            return {}
        labels = (config.get("global") or {}).get("external_labels") or {}
        return {str(k): str(v) for k, v in labels.items()}

    def chunk(self, match: str, start: float, end: float, step: float | None) -> list[Any]:
        if step is None:
            data = self.get(
                "/api/v1/query", {"query": f"{match}[{_duration(end - start)}]", "time": f"{end:.3f}"}
            )
        else:
            data = self.get(
                "/api/v1/query_range",
                {"query": match, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
            )
        if data.get("resultType") != "matrix":
            raise SourceError(f"{match!r} is not a series selector (got a {data.get('resultType')})")
        return list(data["result"])


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def to_raw(result: list[Any], extra: dict[str, str]) -> RawBatch:
    """A query result (matrix) as the receivers' flat arrays; external labels added where missing."""
    names: list[str] = []
    labels: list[tuple[tuple[str, str], ...]] = []
    lengths: list[int] = []
    stamps: list[float] = []
    values: list[str] = []
    for item in result:
        metric = dict(item["metric"])
        name = metric.pop("__name__", None)
        if name is None:
            continue
        for key, value in extra.items():
            metric.setdefault(key, value)
        names.append(name)
        labels.append(tuple(sorted(metric.items())))
        lengths.append(len(item["values"]))
        stamps.extend(point[0] for point in item["values"])
        values.extend(point[1] for point in item["values"])
    ts_us = np.rint(np.array(stamps, dtype=np.float64) * 1e6).astype(np.int64)
    return RawBatch(
        names, labels, np.array(lengths, dtype=np.int64), ts_us, np.array(values, dtype=np.float64)
    )


def plan(window: Window) -> list[tuple[float, float]]:
    edges = [*np.arange(window.start, window.end, window.chunk_seconds).tolist(), window.end]
    return [(float(a), float(b)) for a, b in pairwise(edges) if b > a]


def run(
    database: Database,
    settings: Settings,
    sources: SourceStore,
    name: str,
    window: Window,
    *,
    rates: bool,
    restart: bool = False,
    on_chunk: Callable[[int, int, float], None] | None = None,
) -> BackfillReport:
    """Backfill one source over `window` (or resume its unfinished run); progress after every chunk."""
    source = sources.get(name)
    saved = None if restart else sources.progress(name)
    resumed = saved is not None and saved.done_until < saved.end and saved.step_seconds == window.step_seconds
    if saved is not None and resumed:
        window = Window(saved.done_until, saved.end, window.chunk_seconds, saved.step_seconds)
    elif saved is not None and saved.step_seconds == window.step_seconds:
        window = Window(
            max(window.start, saved.done_until), window.end, window.chunk_seconds, window.step_seconds
        )
    chunks = plan(window)
    totals = {"samples": 0, "accepted": 0, "duplicates": 0}
    dropped: dict[str, int] = {}
    client = PrometheusClient(source)
    try:
        extra = {**client.external_labels(), **source.labels}
        for position, (start, end) in enumerate(chunks):
            for match in source.match:
                raw = to_raw(client.chunk(match, start, end, window.step_seconds), extra)
                with database.session() as session:
                    result = store(session, raw, settings, source="backfill", rates=rates, limit=False)
                for key in totals:
                    totals[key] += getattr(result, key)
                for reason, count in result.dropped.items():
                    dropped[reason] = dropped.get(reason, 0) + count
            sources.save_progress(name, Progress(window.start, window.end, end, window.step_seconds))
            if on_chunk is not None:
                on_chunk(position + 1, len(chunks), end)
    finally:
        client.close()
    return BackfillReport(
        name,
        window.start,
        window.end,
        len(chunks),
        totals["samples"],
        totals["accepted"],
        totals["duplicates"],
        dropped,
        resumed,
    )
