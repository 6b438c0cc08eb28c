"""Bulk import of long CSV files (`series,timestamp,value[,metric][,unit]`, docs/architecture.md §5), and of
two-column `timestamp,value` files given a series name. Goes through the same validation and storage
as the HTTP API, in one transaction per file (whole or nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from service.errors import InvalidInput

CHUNK_SAMPLES = 50_000


@dataclass
class CsvMapping:
    """How rows become series: entity kind and cluster, and defaults for missing columns."""

    kind: str = "node"
    cluster: str = "default"
    metric: str | None = None
    unit: str | None = None
    series: str | None = None  # the entity id for a two-column timestamp,value file


def read_long_csv(path: Path, mapping: CsvMapping) -> pd.DataFrame:
    """Columns series, timestamp (epoch seconds, float), value, metric, unit."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{path}: cannot read CSV: {error}") from error
    columns = set(frame.columns)
    if "series" not in columns:
        if mapping.series is None:
            raise InvalidInput(f"{path}: no 'series' column; pass --series NAME for a timestamp,value file")
        frame["series"] = mapping.series
    for needed in ("timestamp", "value"):
        if needed not in columns:
            raise InvalidInput(f"{path}: missing column {needed!r}; expected series,timestamp,value[,metric]")
    if "metric" not in columns:
        if mapping.metric is None:
            raise InvalidInput(f"{path}: no 'metric' column; pass --metric NAME")
        frame["metric"] = mapping.metric
    if "unit" not in columns:
        frame["unit"] = mapping.unit or "1"
    frame["timestamp"] = _epoch_seconds(path, frame["timestamp"])
    frame["series"] = frame["series"].astype(str)
    return frame[["series", "timestamp", "value", "metric", "unit"]]


def _epoch_seconds(path: Path, column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    try:
        stamps = pd.to_datetime(column, utc=True, format="ISO8601")  # naive times are taken as UTC
    except (ValueError, TypeError) as error:
        raise InvalidInput(
            f"{path}: timestamp column is neither epoch seconds nor ISO 8601: {error}"
        ) from error
    return (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)


def batches(frame: pd.DataFrame, mapping: CsvMapping) -> Iterator[dict[str, Any]]:
    """Telemetry batches (the JSON wire format as dicts) of at most ~CHUNK_SAMPLES samples."""
    pending: list[dict[str, Any]] = []
    size = 0
    for (series, metric, unit), group in frame.groupby(["series", "metric", "unit"], sort=True):
        for start in range(0, len(group), CHUNK_SAMPLES):
            part = group.iloc[start : start + CHUNK_SAMPLES]
            pairs = zip(part["timestamp"].tolist(), part["value"].tolist(), strict=True)
            pending.append(
                {
                    "entity": {"kind": mapping.kind, "id": str(series), "cluster": mapping.cluster},
                    "metric": str(metric), "unit": str(unit),
                    "samples": [list(pair) for pair in pairs],
                }
            )  # fmt: skip
            size += len(part)
            if size >= CHUNK_SAMPLES:
                yield {"series": pending}
                pending, size = [], 0
    if pending:
        yield {"series": pending}
