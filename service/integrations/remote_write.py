"""Prometheus remote-write 1.0 decoding: a snappy-compressed (block format) protobuf `WriteRequest` into
flat numpy arrays. Samples are read in one pass per field straight into arrays, labels once per series.

Status codes are chosen for how Prometheus reacts: it retries 5xx and 429 and drops a batch answered with
any other 4xx. So only what can never succeed gets a 4xx — an undecodable body (400), the wrong protocol
(415, e.g. remote-write 2.0), a body over the limit (413) — while a database outage is a 503 with
Retry-After, which Prometheus retries until the samples are stored.
"""

from __future__ import annotations

import cramjam
import numpy as np
from google.protobuf.message import DecodeError

from service.errors import ForesightError, MalformedRequest, PayloadTooLarge
from service.integrations.convert import RawBatch
from service.integrations.protos import WriteRequest

CONTENT_TYPE = "application/x-protobuf"
V1_PROTO = "prometheus.WriteRequest"


class UnsupportedMediaType(ForesightError):
    """A body in an encoding or protocol version this endpoint does not speak (415)."""

    status_code = 415
    code = "unsupported_media_type"


def check_headers(content_type: str | None, content_encoding: str | None) -> None:
    """Remote-write 1.0 is `application/x-protobuf` with `Content-Encoding: snappy`; 2.0 says
    `proto=io.prometheus.write.v2.Request` and gets 415, which tells a 2.0 sender to fall back to 1.0."""
    media, _, params = (content_type or CONTENT_TYPE).partition(";")
    if media.strip().lower() != CONTENT_TYPE:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not remote-write; send {CONTENT_TYPE} (remote-write 1.0)"
        )
    proto = dict(part.strip().split("=", 1) for part in params.split(";") if "=" in part).get(
        "proto", V1_PROTO
    )
    if proto != V1_PROTO:
        raise UnsupportedMediaType(f"remote-write message {proto!r} is not supported; use remote-write 1.0")
    if (content_encoding or "").strip().lower() != "snappy":
        raise UnsupportedMediaType(
            f"Content-Encoding {content_encoding!r} is not supported; remote-write is snappy-compressed"
        )


def decompress(body: bytes, max_bytes: int) -> bytes:
    """Snappy block decompression, refusing a declared size over `max_bytes` before allocating it."""
    declared, shift = 0, 0
    for position, byte in enumerate(body[:10]):
        declared |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
        if position == 9:
            raise MalformedRequest("body is not snappy block-compressed (bad length header)")
    if declared > max_bytes:
        raise PayloadTooLarge(f"decompressed body of {declared} bytes exceeds the limit of {max_bytes} bytes")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as error:
        raise MalformedRequest(f"body is not snappy block-compressed: {error}") from error


def decode(body: bytes, max_bytes: int) -> RawBatch:
    """The series of a remote-write request; label `__name__` becomes the metric name."""
    request = WriteRequest()
    try:
        request.ParseFromString(decompress(body, max_bytes))
    except DecodeError as error:
        raise MalformedRequest(f"body is not a remote-write WriteRequest protobuf: {error}") from error
    series = request.timeseries
    lengths = np.fromiter((len(item.samples) for item in series), dtype=np.int64, count=len(series))
    total = int(lengths.sum())
    values = np.fromiter((s.value for item in series for s in item.samples), dtype=np.float64, count=total)
    ts_ms = np.fromiter((s.timestamp for item in series for s in item.samples), dtype=np.int64, count=total)
    names: list[str] = []
    labels: list[tuple[tuple[str, str], ...]] = []
    for position, item in enumerate(series):
        pairs = sorted((label.name, label.value) for label in item.labels)
        name = next((value for key, value in pairs if key == "__name__"), None)
        if name is None:
            raise MalformedRequest(f"timeseries[{position}] has no __name__ label")
        names.append(name)
        labels.append(tuple(pair for pair in pairs if pair[0] != "__name__"))
    return RawBatch(names, labels, lengths, ts_ms * 1000, values)


def encode(request: object) -> bytes:
    """Serialize and snappy-compress a WriteRequest (tests, the benchmark)."""
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))  # type: ignore[attr-defined]
