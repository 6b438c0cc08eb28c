"""Queries on both backends: server-side downsampling agrees with a numpy/pandas reference, chart-sized
answers for a week of 10-second data, filters and pagination."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.helpers import T0, batch, bearer, series

WEEK_10S = 7 * 24 * 360  # 60,480 samples


@pytest.fixture
def read_headers(make_key: Callable[..., str]) -> dict[str, str]:
    return bearer(make_key("read"))


@pytest.fixture
def week_of_10s(client: httpx.Client, make_key: Callable[..., str]) -> tuple[int, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    ts = T0 + 10 * np.arange(WEEK_10S)
    hours = (ts - T0) / 3600
    values = np.round(300 + 100 * np.sin(2 * np.pi * hours / 24) + rng.gamma(2.0, 10.0, WEEK_10S), 3)
    samples = [[int(t), float(v)] for t, v in zip(ts, values, strict=True)]
    answer = client.post(
        "/v1/telemetry", json=batch(series(samples=samples)), headers=bearer(make_key("ingest"))
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == WEEK_10S
    return 1, ts, values


def test_hourly_buckets_match_reference(
    client: httpx.Client, read_headers: dict[str, str], week_of_10s: tuple
) -> None:
    series_id, ts, values = week_of_10s
    answer = client.get(f"/v1/series/{series_id}/samples", params={"step": "1h"}, headers=read_headers).json()
    frame = pd.DataFrame({"bucket": (ts // 3600) * 3600, "value": values})
    reference = frame.groupby("bucket")["value"].agg(["mean", "max", "count", lambda v: np.quantile(v, 0.95)])
    assert answer["step_seconds"] == 3600
    assert len(answer["timestamps"]) == len(reference) == 168
    np.testing.assert_allclose(answer["mean"], reference["mean"], rtol=1e-9)
    np.testing.assert_allclose(answer["max"], reference["max"], rtol=1e-12)
    np.testing.assert_allclose(answer["p95"], reference.iloc[:, 3], rtol=1e-9)
    assert answer["count"] == reference["count"].tolist()
    first = pd.Timestamp(answer["timestamps"][0])
    assert first.timestamp() == reference.index[0]


def test_week_of_10s_data_comes_back_chart_sized(
    client: httpx.Client, read_headers: dict[str, str], week_of_10s: tuple
) -> None:
    series_id, _, values = week_of_10s
    answer = client.get(
        f"/v1/series/{series_id}/samples", params={"max_points": 500}, headers=read_headers
    ).json()
    assert 0 < len(answer["timestamps"]) <= 500
    assert sum(answer["count"]) == WEEK_10S
    assert max(answer["max"]) == pytest.approx(values.max())


def test_window_and_raw_samples(
    client: httpx.Client, read_headers: dict[str, str], week_of_10s: tuple
) -> None:
    series_id, ts, values = week_of_10s
    params = {"start": str(T0 + 100), "end": "2024-11-16T18:05:00Z"}
    answer = client.get(f"/v1/series/{series_id}/samples", params=params, headers=read_headers).json()
    assert answer["step_seconds"] is None  # 20 samples: raw
    assert answer["mean"] == values[10:30].tolist()
    detail = client.get(f"/v1/series/{series_id}", headers=read_headers).json()
    assert detail["samples"] == WEEK_10S
    assert pd.Timestamp(detail["last"]).timestamp() == ts[-1]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [({"step": "0s"}, "step"), ({"step": "abc"}, "step"), ({"start": "yesterday"}, "start"),
     ({"start": "2024-11-17T00:00:00"}, "timezone"), ({"start": str(T0 + 100), "end": str(T0)}, "after"),
     ({"step": "1s"}, "points")],
)  # fmt: skip
def test_bad_query_parameters_are_422(
    client: httpx.Client,
    read_headers: dict[str, str],
    week_of_10s: tuple,
    params: dict[str, str],
    fragment: str,
) -> None:
    answer = client.get("/v1/series/1/samples", params=params, headers=read_headers)
    assert answer.status_code == 422, answer.text
    assert fragment in answer.json()["error"]["message"]


def test_unknown_series_is_404(client: httpx.Client, read_headers: dict[str, str]) -> None:
    assert client.get("/v1/series/424242/samples", headers=read_headers).status_code == 404
    assert client.get("/v1/series/424242", headers=read_headers).status_code == 404


def test_filters_and_pagination(
    client: httpx.Client, make_key: Callable[..., str], read_headers: dict[str, str]
) -> None:
    items = [
        series(f"node-{i}", "gpu_power_watts", labels={"gpu": str(i % 2), "rack": "r_1%"}) for i in range(6)
    ]
    items.append(series("api", "requests_per_second", "req/s", kind="workload", cluster="east"))
    client.post("/v1/telemetry", json=batch(*items), headers=bearer(make_key("ingest")))

    def ids(**params: object) -> list[str]:
        return [
            s["entity_id"]
            for s in client.get("/v1/series", params=params, headers=read_headers).json()["items"]
        ]

    assert ids(label="gpu=1") == ["node-1", "node-3", "node-5"]
    assert ids(label=["gpu=1", "rack=r_1%"]) == ["node-1", "node-3", "node-5"]
    assert ids(label="rack=r_1") == []  # LIKE wildcards in values are literal
    assert ids(cluster="east") == ["api"]
    assert ids(entity_kind="workload") == ["api"]
    assert ids(entity_id="node-2", metric="gpu_power_watts") == ["node-2"]
    page = client.get("/v1/series", params={"limit": 4, "offset": 4}, headers=read_headers).json()
    assert page["total"] == 7 and len(page["items"]) == 3
    entities = client.get("/v1/entities", params={"kind": "node", "limit": 2}, headers=read_headers).json()
    assert entities["total"] == 6 and len(entities["items"]) == 2
    assert client.get("/v1/series", params={"label": "nolabel"}, headers=read_headers).status_code == 422
