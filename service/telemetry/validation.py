"""Parse and validate a telemetry batch (docs/architecture.md §5) into numpy arrays, all checks vectorised.

Every problem is reported with the index of the series and of the sample, so a client can fix its batch;
nothing here touches the database, so a rejected batch can never be half-written.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from service.errors import InvalidInput, MalformedRequest, PayloadTooLarge
from service.models.telemetry import ENTITY_KINDS
from service.names import name_problem
from service.ops.jsonguard import json_problem
from service.telemetry.sample_checks import check_samples
from service.telemetry.units import canonical_unit, known_units

# \Z, not $: `$` also matches before a trailing newline, which let "cpu\n" through
METRIC_RE = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:.]{0,199}\Z")
LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}\Z")
METRIC_SHOWN = r"^[A-Za-z_:][A-Za-z0-9_:.]{0,199}$"
MAX_LABELS = 32
MAX_DETAILS = 50
DEFAULT_CLUSTER = "default"
SERIES_FIELDS = {"entity", "metric", "unit", "labels", "samples"}


@dataclass(frozen=True, order=True)
class SeriesKey:
    """The identity of a series: unique per (cluster, entity kind, entity name, metric, labels)."""

    cluster: str
    kind: str
    name: str
    metric: str
    labels_key: str

    def describe(self) -> str:
        labels = "" if self.labels_key == "{}" else self.labels_key
        return f"{self.kind} {self.name!r} in {self.cluster!r} / {self.metric}{labels}"


@dataclass
class ParsedSeries:
    """A series of the batch: its identity and its position in the request."""

    index: int
    key: SeriesKey
    unit: str
    labels: dict[str, str]
    samples: list[Any]


@dataclass
class ParsedBatch:
    """Validated samples of all series as flat arrays; `owner[i]` is the position in `series` of sample i."""

    series: list[ParsedSeries] = field(default_factory=list)
    owner: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    ts_us: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    values: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float64))

    @property
    def sample_count(self) -> int:
        return len(self.values)


class Problems:
    """Collects problems (up to a limit) so one answer can name all of them."""

    def __init__(self) -> None:
        self.details: list[dict[str, Any]] = []

    def add(self, series: int | None, sample: int | None, fld: str, problem: str, what: str = "") -> None:
        if len(self.details) >= MAX_DETAILS:
            return
        where = "batch" if series is None else f"series[{series}]"
        if what:
            where += f" ({what})"
        if sample is not None:
            where += f" sample[{sample}]"
        detail: dict[str, Any] = {"series": series, "sample": sample, "field": fld, "problem": problem}
        detail["message"] = f"{where}: {fld} {problem}"
        self.details.append(detail)

    def raise_if_any(self) -> None:
        if self.details:
            count = len(self.details)
            more = f" (and {count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""
            raise InvalidInput(self.details[0]["message"] + more, details=self.details)


def decode_json(body: bytes) -> Any:
    """orjson for speed; the standard parser as fallback so NaN/Infinity literals get a precise 422."""
    if not body.strip():
        raise MalformedRequest('empty request body; send a JSON object {"series": [...]}')
    try:
        return orjson.loads(body)  # bounded itself: at most 1024 levels, 64-bit integers
    except orjson.JSONDecodeError:
        pass
    if problem := json_problem(body):
        raise InvalidInput(f"body: {problem}", details=[{"field": "body", "problem": problem}])
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MalformedRequest(f"body is not valid JSON: {error}") from error
    except (ValueError, RecursionError) as error:  # past the guard's bounds all the same
        raise InvalidInput(f"body: {error}", details=[{"field": "body", "problem": str(error)}]) from None


def parse_batch(
    payload: Any, *, max_samples: int, max_future_seconds: int, now: float | None = None
) -> ParsedBatch:
    """Validate a decoded batch; raises InvalidInput / PayloadTooLarge naming series and sample."""
    problems = Problems()
    if not isinstance(payload, dict) or not isinstance(payload.get("series"), list):
        raise InvalidInput('a batch is a JSON object with a "series" list', details=[])
    extra = set(payload) - {"series"}
    if extra:
        problems.add(None, None, "batch", f"has unknown fields {sorted(extra)}; only 'series' is allowed")
    raw_series: list[Any] = payload["series"]
    if not raw_series:
        raise InvalidInput("the batch has no series; send at least one series with samples")
    total = sum(
        len(s["samples"]) for s in raw_series if isinstance(s, dict) and isinstance(s.get("samples"), list)
    )
    if total > max_samples:
        raise PayloadTooLarge(
            f"the batch has {total} samples, more than the limit of {max_samples}; "
            "split it into smaller batches"
        )
    latest = (time.time() if now is None else now) + max_future_seconds
    headers: list[ParsedSeries] = []
    seen: dict[SeriesKey, int] = {}
    for index, raw in enumerate(raw_series):
        parsed = _parse_series(index, raw, problems)
        if parsed is None:
            continue
        if parsed.key in seen:
            problems.add(index, None, "series", f"repeats series[{seen[parsed.key]}]; merge their samples")
            continue
        seen[parsed.key] = index
        headers.append(parsed)
    arrays = check_samples(headers, problems, latest, max_future_seconds) if headers else None
    problems.raise_if_any()
    assert arrays is not None
    owner, ts_us, values = arrays
    return ParsedBatch(headers, owner, ts_us, values)


def _parse_series(index: int, raw: Any, problems: Problems) -> ParsedSeries | None:
    if not isinstance(raw, dict):
        problems.add(index, None, "series", "must be an object with entity, metric, unit, samples")
        return None
    before = len(problems.details)
    unknown = set(raw) - SERIES_FIELDS
    if unknown:
        problems.add(index, None, "series", f"has unknown fields {sorted(unknown)}")
    key_parts = _parse_identity(index, raw, problems)
    unit_raw = raw.get("unit")
    unit = canonical_unit(unit_raw) if isinstance(unit_raw, str) else None
    if unit is None:
        problems.add(index, None, "unit", f"{unit_raw!r} is not a known unit; use one of {known_units()}")
    samples = raw.get("samples")
    if not isinstance(samples, list) or not samples:
        problems.add(index, None, "samples", "must be a non-empty list of [timestamp, value] pairs")
        return None
    if len(problems.details) > before or key_parts is None or unit is None:
        return None
    key, labels = key_parts
    return ParsedSeries(index, key, unit, labels, samples)


def _parse_identity(
    index: int, raw: dict[str, Any], problems: Problems
) -> tuple[SeriesKey, dict[str, str]] | None:
    entity = raw.get("entity")
    if not isinstance(entity, dict):
        problems.add(
            index, None, "entity", 'must be an object like {"kind": "node", "id": "n1", "cluster": "c"}'
        )
        return None
    kind, name, cluster = entity.get("kind"), entity.get("id"), entity.get("cluster", DEFAULT_CLUSTER)
    ok = True
    if kind not in ENTITY_KINDS:
        problems.add(index, None, "entity.kind", f"{kind!r} is not one of {list(ENTITY_KINDS)}")
        ok = False
    for fld, value in (("entity.id", name), ("entity.cluster", cluster)):
        if problem := name_problem(value):
            problems.add(index, None, fld, problem)
            ok = False
    if set(entity) - {"kind", "id", "cluster"}:
        problems.add(
            index, None, "entity", f"has unknown fields {sorted(set(entity) - {'kind', 'id', 'cluster'})}"
        )
        ok = False
    if ok and kind == "cluster":
        if "cluster" in entity and cluster != name:
            problems.add(index, None, "entity.cluster", "must equal entity.id for a cluster entity")
            ok = False
        cluster = name
    metric = raw.get("metric")
    if not isinstance(metric, str) or not METRIC_RE.match(metric):
        problems.add(index, None, "metric", f"{metric!r} must match {METRIC_SHOWN}")
        ok = False
    labels = raw.get("labels", {})
    if labels is None:
        labels = {}
    if not isinstance(labels, dict) or len(labels) > MAX_LABELS:
        problems.add(index, None, "labels", f"must be an object of at most {MAX_LABELS} string labels")
        return None
    for label, value in labels.items():
        if not LABEL_RE.match(label):
            shown = label.encode("unicode_escape").decode()[:100]
            problems.add(index, None, f"labels.{shown}", "name must match ^[A-Za-z_][A-Za-z0-9_]{0,99}$")
            ok = False
        elif problem := name_problem(value, allow_empty=True):
            problems.add(index, None, f"labels.{label}", f"value {problem}")
            ok = False
    if not ok:
        return None
    labels_key = json.dumps(labels, sort_keys=True, separators=(",", ":"))
    return SeriesKey(str(cluster), str(kind), str(name), str(metric), labels_key), dict(labels)
