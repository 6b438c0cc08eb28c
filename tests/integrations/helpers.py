"""Builders of remote-write and OTLP requests, and probes of stored series, for the integration tests."""

from __future__ import annotations

from typing import Any

import httpx

from service.integrations import protos, remote_write
from tests.helpers import bearer

SNAPPY = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def write_request(*series: tuple[dict[str, str], list[tuple[int, float]]]) -> Any:
    """A WriteRequest from (labels with __name__, [(timestamp ms, value), …]) pairs."""
    request = protos.WriteRequest()
    for labels, samples in series:
        item = request.timeseries.add()
        for name, value in labels.items():
            item.labels.add(name=name, value=value)
        for ts, value in samples:
            item.samples.add(timestamp=ts, value=value)
    return request


def post_write(client: httpx.Client, key: str, request: Any, path: str = "/api/v1/write") -> httpx.Response:
    headers = {**SNAPPY, **bearer(key)}
    return client.post(path, content=remote_write.encode(request), headers=headers)


def stored_series(client: httpx.Client, key: str, **query: str) -> list[dict[str, Any]]:
    answer = client.get("/v1/series", params={"limit": "1000", **query}, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def samples_of(client: httpx.Client, key: str, series_id: int) -> list[tuple[float, float]]:
    answer = client.get(
        f"/v1/series/{series_id}/samples", params={"max_points": "20000"}, headers=bearer(key)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return [(httpx_ts(t), v) for t, v in zip(body["timestamps"], body["mean"], strict=True)]


def httpx_ts(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


def eventually(check: Any, what: str, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll `check()` until it returns something truthy, failing with `what` after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {str(last)[:500]})")
