"""Encode samples in Postgres' binary COPY format with numpy: no per-row Python on the hot path."""

from __future__ import annotations

import numpy as np

PG_EPOCH_OFFSET_US = 946_684_800 * 1_000_000  # 2000-01-01 minus 1970-01-01, in microseconds
_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_TRAILER = b"\xff\xff"
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("series_len", ">i4"), ("series_id", ">i8"),
        ("ts_len", ">i4"), ("ts", ">i8"),
        ("value_len", ">i4"), ("value", ">f8"),
    ]
)  # fmt: skip


def encode_samples(series_id: np.ndarray, ts_us: np.ndarray, value: np.ndarray) -> bytes:
    """Rows (bigint, timestamptz, float8) as one COPY … (FORMAT BINARY) payload."""
    rows = np.empty(len(series_id), dtype=_ROW)
    rows["fields"] = 3
    rows["series_len"] = 8
    rows["ts_len"] = 8
    rows["value_len"] = 8
    rows["series_id"] = series_id
    rows["ts"] = ts_us - PG_EPOCH_OFFSET_US
    rows["value"] = value
    return _HEADER + rows.tobytes() + _TRAILER
