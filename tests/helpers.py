"""Factories for telemetry payloads and probes of what the database holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text

from service.db import Database

REPO_ROOT = Path(__file__).resolve().parent.parent
T0 = 1_731_780_000  # 2024-11-16T18:00:00Z


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def series(
    entity_id: str = "gpu-node-17",
    metric: str = "gpu_power_watts",
    unit: str = "W",
    samples: list[list[Any]] | None = None,
    *,
    kind: str = "node",
    cluster: str = "west",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "entity": {"kind": kind, "id": entity_id, "cluster": cluster},
        "metric": metric,
        "unit": unit,
        "samples": samples if samples is not None else [[T0, 287.5], [T0 + 60, 291.0]],
    }
    if labels is not None:
        item["labels"] = labels
    return item


def batch(*items: dict[str, Any]) -> dict[str, Any]:
    return {"series": list(items)}


def counts(database: Database) -> tuple[int, int]:
    """(series, samples) stored."""
    with database.engine.connect() as connection:
        n_series = connection.execute(text("SELECT count(*) FROM series")).scalar_one()
        n_samples = connection.execute(text("SELECT count(*) FROM samples")).scalar_one()
    return int(n_series), int(n_samples)


def snapshot(database: Database) -> dict[str, Any]:
    """Everything ingestion can touch, to prove a rejected batch changed nothing."""
    with database.engine.connect() as connection:
        return {
            table: sorted(tuple(row) for row in connection.execute(text(f"SELECT * FROM {table}")))
            for table in ("clusters", "nodes", "workloads", "power_domains", "series", "samples")
        }
