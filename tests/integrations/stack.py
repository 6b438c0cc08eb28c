"""The real-Prometheus test stack: a Foresight server on a fixed port (so it can be restarted under
Prometheus's feet), Prometheus scraping node-exporter, Foresight's /metrics and its forecast export, and
remote-writing to Foresight; plus probes of both sides' stored samples."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from service.app import create_app
from service.config import Settings
from service.db import Database
from service.telemetry import repository
from tests.integrations.helpers import eventually

SCRAPE_SECONDS = 1
SENT_MARGIN_SECONDS = 5  # samples this much older than Prometheus's highest sent timestamp were sent


class FixedPortServer:
    """Foresight under uvicorn in a thread, on a given port, that can be stopped and started again."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings, self.port = settings, port
        self.url = f"http://127.0.0.1:{port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> FixedPortServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(
            create_app(self.settings), log_level="warning", access_log=False, lifespan="on"
        )
        self.server = server = uvicorn.Server(config)
        self.thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
        self.thread.start()
        self.listener = listener
        eventually(lambda: server.started, "Foresight to start", timeout=120, interval=0.02)
        return self

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.listener.close()


def prometheus_config(
    foresight: str, node_exporter: str, ingest_key: str, read_key: str, cluster: str
) -> str:
    interval = f"{SCRAPE_SECONDS}s"
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": "15s",
            "external_labels": {"cluster": cluster},
        },
        "scrape_configs": [
            {"job_name": "node", "static_configs": [{"targets": [node_exporter]}]},
            {"job_name": "foresight", "static_configs": [{"targets": [foresight]}]},
            {
                "job_name": "foresight-exports",
                "metrics_path": "/v1/exports/prometheus",
                "scrape_interval": "2s",
                "scrape_timeout": "2s",
                "authorization": {"credentials": read_key},
                "static_configs": [{"targets": [foresight]}],
            },
        ],
        "remote_write": [
            {
                "url": f"http://{foresight}/api/v1/write?counters=rate",
                "authorization": {"credentials": ingest_key},
                "queue_config": {
                    "min_shards": 1,
                    "max_shards": 1,
                    "batch_send_deadline": "200ms",
                    "min_backoff": "50ms",
                    "max_backoff": "500ms",
                    "max_samples_per_send": 2000,
                },
                "metadata_config": {"send": True, "send_interval": "2s"},
            }
        ],
    }
    return yaml.safe_dump(config)


class PrometheusProbe:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)

    def own_metric(self, name: str) -> float:
        """The sum of one of Prometheus's own metrics (from its /metrics)."""
        total = 0.0
        for family in text_string_to_metric_families(self.http.get("/metrics").text):
            for sample in family.samples:
                if sample.name == name:
                    total += float(sample.value)
        return total

    def query(self, expression: str, at: float | None = None) -> list[Any]:
        params = {"query": expression} | ({"time": f"{at:.3f}"} if at is not None else {})
        answer = self.http.get("/api/v1/query", params=params)
        assert answer.status_code == 200, answer.text
        result: list[Any] = answer.json()["data"]["result"]
        return result

    def highest_sent(self) -> float:
        return self.own_metric("prometheus_remote_storage_queue_highest_sent_timestamp_seconds")

    def wait_sent_past(self, moment: float, timeout: float = 240) -> float:
        """Wait until Prometheus reports samples newer than `moment` as sent; returns a time before which
        every sample it scraped has been sent (one shard sends in order; the margin covers scrape skew)."""
        eventually(
            lambda: self.highest_sent() > moment + SENT_MARGIN_SECONDS,
            f"samples after {moment} sent",
            timeout=timeout,
            interval=0.2,
        )
        return self.highest_sent() - SENT_MARGIN_SECONDS


def stored(
    database: Database, metrics: list[str] | None = None, until: float | None = None
) -> dict[Any, Any]:
    """{(cluster, kind, entity, metric, labels_key): {ts_us: value}} of what Foresight stored."""
    clause = "" if metrics is None else "WHERE s.metric IN (" + ",".join(f"'{m}'" for m in metrics) + ")"
    with database.session() as session:
        rows = session.execute(
            text(
                "SELECT s.id, c.name, s.entity_kind, s.entity_name, s.metric, s.labels_key FROM series s "
                f"JOIN clusters c ON c.id = s.cluster_id {clause}"
            )
        ).all()
        keys = {row[0]: tuple(row[1:]) for row in rows}
        until_us = None if until is None else int(until * 1e6)
        sid, ts, values = repository.samples_of_series(session, list(keys), None, until_us)
    out: dict[Any, dict[int, float]] = {key: {} for key in keys.values()}
    for series_id, stamp, value in zip(sid.tolist(), ts.tolist(), values.tolist(), strict=True):
        out[keys[series_id]][stamp] = value
    return {key: samples for key, samples in out.items() if samples}


def write_config(path: Path, content: str) -> Path:
    path.write_text(content)
    return path


def as_us(seconds: float) -> int:
    return int(np.rint(seconds * 1e6))


def now() -> float:
    return time.time()
