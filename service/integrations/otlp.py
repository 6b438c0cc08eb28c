"""OTLP/HTTP metrics decoding (`ExportMetricsServiceRequest`, protobuf or JSON, optionally gzip) into the
flat arrays every receiver shares. Resource attributes (host, k8s names, cluster) place the series and are
not kept as series labels; data-point attributes are. Gauges and sums are stored as they are (monotonic
cumulative sums are counters); histograms and summaries as `<name>_count` / `<name>_sum` counters, and
summary quantiles as `<name>` with a `quantile` label.

Answers follow the OTLP/HTTP rules: 200 with an `ExportMetricsServiceResponse` in the request's encoding
(`partial_success` counts the points left out), 400 for an undecodable body (not retried), 503 with
Retry-After when the database is down (retried).
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from service.errors import InvalidInput, MalformedRequest, PayloadTooLarge
from service.integrations.convert import Pairs, RawBatch
from service.integrations.protos import (
    FLAG_NO_RECORDED_VALUE,
    TEMPORALITY_CUMULATIVE,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from service.integrations.remote_write import UnsupportedMediaType
from service.ops.jsonguard import json_problem

PROTOBUF, JSON = "application/x-protobuf", "application/json"
INVALID_CHARS = re.compile(r"[^A-Za-z0-9_]")
INVALID_METRIC_CHARS = re.compile(r"[^A-Za-z0-9_:.]")


def media_type(content_type: str | None) -> str:
    media = (content_type or PROTOBUF).partition(";")[0].strip().lower()
    if media not in (PROTOBUF, JSON):
        raise UnsupportedMediaType(f"Content-Type {content_type!r} is not OTLP; send {PROTOBUF} or {JSON}")
    return media


def inflate(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise UnsupportedMediaType(
            f"Content-Encoding {content_encoding!r} is not supported; use gzip or none"
        )
    try:
        data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, max_bytes + 1)
    except zlib.error as error:
        raise MalformedRequest(f"body is not valid gzip: {error}") from error
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"decompressed body exceeds the limit of {max_bytes} bytes")
    return data


def parse(body: bytes, media: str) -> Any:
    request = ExportMetricsServiceRequest()
    try:
        if media == JSON:
            if problem := json_problem(body):
                raise InvalidInput(f"body: {problem}", details=[{"field": "body", "problem": problem}])
            json_format.Parse(body, request, ignore_unknown_fields=True)
        else:
            request.ParseFromString(body)
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as error:
        kind = "OTLP JSON" if media == JSON else "an OTLP protobuf"
        raise MalformedRequest(f"body is not {kind} ExportMetricsServiceRequest: {error}") from error
    return request


def answer(media: str, rejected: int, message: str) -> tuple[bytes, str]:
    """The ExportMetricsServiceResponse body in the request's encoding."""
    response = ExportMetricsServiceResponse()
    if rejected:
        response.partial_success.rejected_data_points = rejected
        response.partial_success.error_message = message
    if media == JSON:
        return json_format.MessageToJson(response, indent=None).encode(), JSON
    return response.SerializeToString(), PROTOBUF


def _text(value: Any) -> str | None:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        item = getattr(value, kind)
        return str(item).lower() if kind == "bool_value" else str(item)
    return None  # arrays, maps and bytes do not identify a series


def _pairs(attributes: Any) -> Pairs:
    out = {}
    for attribute in attributes:
        text = _text(attribute.value)
        if text is not None:
            key = INVALID_CHARS.sub("_", attribute.key)
            out["_" + key if key[:1].isdigit() else key] = text
    return tuple(sorted(out.items()))


class _Collector:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.labels: list[Pairs] = []
        self.contexts: list[Pairs] = []
        self.units: list[str | None] = []
        self.counters: list[bool | None] = []
        self.ts: list[int] = []
        self.values: list[float] = []

    def add(
        self,
        name: str,
        labels: Pairs,
        context: Pairs,
        unit: str | None,
        counter: bool,
        point: Any,
        value: float,
    ) -> None:
        self.names.append(name)
        self.labels.append(labels)
        self.contexts.append(context)
        self.units.append(unit)
        self.counters.append(counter)
        self.ts.append(point.time_unix_nano // 1000 if point.time_unix_nano else -1)
        self.values.append(float("nan") if point.flags & FLAG_NO_RECORDED_VALUE else value)

    def batch(self) -> RawBatch:
        return RawBatch(
            self.names,
            self.labels,
            np.ones(len(self.names), dtype=np.int64),
            np.array(self.ts, dtype=np.int64),
            np.array(self.values, dtype=np.float64),
            self.contexts,
            self.units,
            self.counters,
        )


def decode(request: Any) -> RawBatch:
    """Every data point as a one-sample series; the shared conversion merges points of one series."""
    out = _Collector()
    for resource_metrics in request.resource_metrics:
        context = _pairs(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _metric(out, metric, context)
    return out.batch()


def _metric(out: _Collector, metric: Any, context: Pairs) -> None:
    name = INVALID_METRIC_CHARS.sub("_", metric.name)
    unit = metric.unit or None
    kind = metric.WhichOneof("data")
    if kind in ("gauge", "sum"):
        data = getattr(metric, kind)
        counter = (
            kind == "sum" and data.is_monotonic and data.aggregation_temporality == TEMPORALITY_CUMULATIVE
        )
        for point in data.data_points:
            value = point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
            out.add(name, _pairs(point.attributes), context, unit, counter, point, value)
    elif kind in ("histogram", "exponential_histogram", "summary"):
        data = getattr(metric, kind)
        cumulative = kind == "summary" or data.aggregation_temporality == TEMPORALITY_CUMULATIVE
        for point in data.data_points:
            labels = _pairs(point.attributes)
            out.add(f"{name}_count", labels, context, "count", cumulative, point, float(point.count))
            if kind == "summary" or point.HasField("sum"):
                out.add(f"{name}_sum", labels, context, unit, cumulative, point, point.sum)
            for quantile in getattr(point, "quantile_values", ()):
                tagged = tuple(sorted((*labels, ("quantile", f"{quantile.quantile:g}"))))
                out.add(name, tagged, context, unit, False, point, quantile.value)


def read(
    body: bytes, content_type: str | None, content_encoding: str | None, max_bytes: int
) -> tuple[RawBatch, str]:
    """Decode a request body; returns the series and the media type to answer in."""
    media = media_type(content_type)
    data = inflate(body, content_encoding, max_bytes)
    if not data and media == JSON:
        raise MalformedRequest("empty body; send an OTLP ExportMetricsServiceRequest")
    return decode(parse(data, media)), media
