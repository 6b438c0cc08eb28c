"""Forecasts through real HTTP on both backends: train into the registry, serve quantiles (409 before a
model exists), store what was served once, move the cutoff as data arrives, score live accuracy."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from service.db import Database
from tests.helpers import T0, batch, bearer, series

STEP = 300  # 5-minute samples
DAY = 288


def _load(t: np.ndarray, phase: float) -> np.ndarray:
    rng = np.random.default_rng(int(phase * 10))
    return 100 + 40 * np.sin(2 * np.pi * (t - T0) / 86400 + phase) + rng.normal(0, 3, len(t))


def _samples(start: int, count: int, phase: float) -> list[list[float]]:
    t = T0 + STEP * np.arange(start, start + count)
    return [[int(a), round(float(b), 3)] for a, b in zip(t, _load(t, phase), strict=True)]


@pytest.fixture
def keys(make_key: Callable[..., str]) -> dict[str, dict[str, str]]:
    return {scope: bearer(make_key(scope)) for scope in ("ingest", "read", "operate")}


@pytest.fixture
def seeded(client: httpx.Client, keys: dict[str, dict[str, str]]) -> dict[str, int]:
    items = [series(f"web-{i}", "requests_per_second", "req/s", _samples(0, 4 * DAY, i), kind="workload")
             for i in range(2)]  # fmt: skip
    assert client.post("/v1/telemetry", json=batch(*items), headers=keys["ingest"]).status_code == 200
    listed = client.get("/v1/series", headers=keys["read"]).json()["items"]
    return {s["entity_id"]: s["id"] for s in listed}


def _train(client: httpx.Client, keys: dict[str, dict[str, str]], **body: object) -> httpx.Response:
    payload = {"model": "seasonal_naive", "horizon": 12, "backtest": True} | body
    return client.post("/v1/models/train", json=payload, headers=keys["operate"])


def test_train_serve_store_and_score(
    client: httpx.Client, database: Database, keys: dict[str, dict[str, str]], seeded: dict[str, int]
) -> None:
    web0 = seeded["web-0"]
    before = client.get("/v1/forecasts", params={"series": web0}, headers=keys["read"])
    assert before.status_code == 409 and "foresight forecast train" in before.json()["error"]["message"]

    trained = _train(client, keys, entity_kind="workload")
    assert trained.status_code == 201, trained.text
    model = trained.json()
    assert (model["name"], model["version"], model["kind"]) == ("seasonal_naive", 1, "forecaster")
    assert model["metrics"]["n"] > 0 and 0 <= model["metrics"]["coverage_80"] <= 1
    assert {entry[0] for entry in model["params"]["series"]} == set(seeded.values())

    served = client.get("/v1/forecasts", params={"series": web0, "horizon": 12}, headers=keys["read"]).json()
    assert served["model_id"] == model["id"] and len(served["points"]) == 12
    last = pd.Timestamp(T0 + STEP * (4 * DAY - 1), unit="s", tz="UTC")
    assert pd.Timestamp(served["cutoff"]) == last
    stamps = [pd.Timestamp(p["timestamp"]) for p in served["points"]]
    assert stamps == [last + pd.Timedelta(seconds=STEP * h) for h in range(1, 13)]
    for point in served["points"]:
        values = [point["quantiles"][k] for k in sorted(point["quantiles"], key=float)]
        assert values == sorted(values)
    client.get("/v1/forecasts", params={"series": web0, "horizon": 12}, headers=keys["read"])
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM forecasts")).scalar_one() == 12  # stored once

    future = series("web-0", "requests_per_second", "req/s", _samples(4 * DAY, 12, 0), kind="workload")
    client.post("/v1/telemetry", json=batch(future), headers=keys["ingest"])
    scored = client.get("/v1/forecasts/accuracy", params={"series": web0}, headers=keys["read"]).json()[
        "items"
    ]
    assert scored[0]["series_id"] == web0 and scored[0]["scored"] == 12
    assert scored[0]["coverage_80"] >= 0.5 and scored[0]["wql"] < 0.2  # a daily cycle seasonal naive knows

    moved = client.get("/v1/forecasts", params={"series": web0, "horizon": 3}, headers=keys["read"]).json()
    assert pd.Timestamp(moved["cutoff"]) == last + pd.Timedelta(seconds=STEP * 12)  # updated with new data
    assert [m["id"] for m in client.get("/v1/models", headers=keys["read"]).json()] == [model["id"]]


def test_training_errors_are_clear(
    client: httpx.Client, keys: dict[str, dict[str, str]], seeded: dict[str, int]
) -> None:
    unknown = _train(client, keys, model="prophet")
    assert unknown.status_code == 422 and "seasonal_naive" in unknown.json()["error"]["message"]
    assert _train(client, keys, cluster="nowhere").status_code == 422
    assert _train(client, keys, series_ids=[999_999]).status_code == 422
    short = series("tiny", "requests_per_second", "req/s", _samples(0, 5, 0), kind="workload", cluster="lab")
    client.post("/v1/telemetry", json=batch(short), headers=keys["ingest"])
    too_short = _train(client, keys, cluster="lab", model="lightgbm")
    assert too_short.status_code == 422
    assert "needs at least" in too_short.json()["error"]["message"]
    assert client.post("/v1/models/train", json={}, headers=keys["read"]).status_code == 403
    assert client.get("/v1/forecasts", params={"series": 424242}, headers=keys["read"]).status_code == 404


def test_auto_model_description_is_stored_and_explains_each_forecast(
    client: httpx.Client, keys: dict[str, dict[str, str]], seeded: dict[str, int]
) -> None:
    config = {"horizon": 12, "candidates": ["naive", "seasonal_naive", "seasonal_window", "autoets"]}
    trained = _train(client, keys, model="auto", config=config, backtest=False)
    assert trained.status_code == 201, trained.text
    described = trained.json()["params"]["description"]
    assert described["members"] == config["candidates"]
    labels = {label.split("/")[-2]: label for label in described["series_weights"]}  # entity/metric
    assert set(labels) == {"web-0", "web-1"}
    assert described["validation"]["scores"]["ensemble"]["crps_scaled"] >= 0
    served = client.get(
        "/v1/forecasts", params={"series": seeded["web-1"], "horizon": 12}, headers=keys["read"]
    ).json()
    evidence = served["model_evidence"]
    assert evidence["weights"] == described["series_weights"][labels["web-1"]]
    assert evidence["weights_are"] == "this series'"
    assert sum(evidence["weights"].values()) == pytest.approx(1.0, abs=1e-3)
    assert set(evidence["validation_scores"]) >= {"ensemble", "calibrated", *config["candidates"]}
    assert evidence["weights_chosen_on"] == "the validation window at training"

    # the forecast just served is scored when its targets arrive, and the weights chosen again on it: the
    # evidence served next is the model's own, not the stored description from training
    future = [series(f"web-{i}", "requests_per_second", "req/s", _samples(4 * DAY, 6, i), kind="workload")
              for i in range(2)]  # fmt: skip
    assert client.post("/v1/telemetry", json=batch(*future), headers=keys["ingest"]).status_code == 200
    moved = client.get(
        "/v1/forecasts", params={"series": seeded["web-1"], "horizon": 12}, headers=keys["read"]
    ).json()["model_evidence"]
    assert moved["weights_chosen_on"].startswith("the newest ")
    assert sum(moved["weights"].values()) == pytest.approx(1.0, abs=1e-3)
