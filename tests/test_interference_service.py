"""Interference forecasts in the service, on both backends: an interference model trained on a workload's
performance series forecasts its slowdown, and the scaling decision sizes for the capacity it leaves —
more replicas when noisy neighbours slow every replica down, and the slowdown in the evidence."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np

from tests.helpers import T0, batch, bearer

STEP = 300
COUNT = 4 * 288


def _series(workload: str, metric: str, unit: str, values: np.ndarray) -> dict[str, object]:
    t = T0 + STEP * np.arange(len(values))
    return {
        "entity": {"kind": "workload", "id": workload, "cluster": "west"},
        "metric": metric,
        "unit": unit,
        "samples": [[int(a), round(float(b), 4)] for a, b in zip(t, values, strict=True)],
    }


def test_a_slowed_workload_gets_more_replicas_and_says_why(
    client: httpx.Client, make_key: Callable[..., str]
) -> None:
    admin = bearer(make_key("admin"))
    rng = np.random.default_rng(3)
    load = 200 + rng.normal(0, 2, COUNT)
    healthy = 100 + rng.normal(0, 1, COUNT)  # requests/s one replica completes
    slowed = healthy.copy()
    slowed[-288:] *= 0.6  # the last day a noisy neighbour takes 40 % of every replica
    items = [_series(w, "requests_per_second", "req/s", load) for w in ("calm", "noisy")]
    items += [
        _series("calm", "replica_throughput", "req/s", healthy),
        _series("noisy", "replica_throughput", "req/s", slowed),
    ]
    assert client.post("/v1/telemetry", json=batch(*items), headers=admin).status_code == 200
    for name in ("calm", "noisy"):
        body = {
            "cluster": "west",
            "replicas": 3,
            "replica_capacity": 100.0,
            "max_replicas": 50,
            "mode": "shadow",
            "performance_metric": "replica_throughput",
        }
        answer = client.put(f"/v1/workloads/{name}", json=body, headers=admin)
        assert answer.status_code == 200 and answer.json()["performance_metric"] == "replica_throughput"
    series = {
        (s["entity_id"], s["metric"]): s["id"]
        for s in client.get("/v1/series", headers=admin).json()["items"]
    }
    load_ids = [series[(w, "requests_per_second")] for w in ("calm", "noisy")]
    perf_ids = [series[(w, "replica_throughput")] for w in ("calm", "noisy")]
    train = {"model": "seasonal_naive", "horizon": 6, "backtest": False, "series_ids": load_ids}
    assert client.post("/v1/models/train", json=train, headers=admin).status_code == 201

    before = client.post("/v1/recommendations/scaling", json={"workload": "noisy"}, headers=admin).json()
    assert before["explanation"]["forecast"]["degradation"] is None
    assert "train an interference model" in " ".join(before["explanation"]["details"]["notes"])

    interference = {
        "model": "interference",
        "series_ids": perf_ids,
        "horizon": 6,
        "backtest": False,
        "config": {"base": "seasonal_naive"},
    }
    trained = client.post("/v1/models/train", json=interference, headers=admin)
    assert trained.status_code == 201, trained.text
    served = client.get("/v1/forecasts", params={"series": perf_ids[1], "horizon": 6}, headers=admin).json()
    assert served["target"] == "degradation" and 0.3 < served["points"][0]["quantiles"]["0.5"] < 0.5

    calm = client.post("/v1/recommendations/scaling", json={"workload": "calm"}, headers=admin).json()
    noisy = client.post("/v1/recommendations/scaling", json={"workload": "noisy"}, headers=admin).json()
    assert noisy["explanation"]["forecast"]["degradation"] is not None
    assert noisy["params"]["replicas"] > calm["params"]["replicas"] + 1, (calm["params"], noisy["params"])


def _node_series(node: str, metric: str, unit: str, values: np.ndarray) -> dict[str, object]:
    item = _series(node, metric, unit, values)
    item["entity"] = {"kind": "node", "id": node, "cluster": "west"}
    return item


def test_the_loop_trains_interference_models_and_its_decisions_carry_the_slowdown(
    client: httpx.Client, make_key: Callable[..., str]
) -> None:
    """No manual interference training: the loop trains it for a workload that declares its performance
    series (and per node from probe series), refreshes nothing while it is fresh, and leaves alone a
    performance series a user chose to forecast with another model."""
    admin = bearer(make_key("admin"))
    rng = np.random.default_rng(5)
    load = 200 + rng.normal(0, 2, COUNT)
    slowed = 100 + rng.normal(0, 1, COUNT)
    slowed[-288:] *= 0.6
    probe = 5000 + rng.normal(0, 20, COUNT)
    probe[-288:] *= 0.7  # the node's memory-bandwidth probe loses 30 % the same day
    latency = 10 + rng.normal(0, 0.1, COUNT)
    items = [_series(w, "requests_per_second", "req/s", load) for w in ("noisy", "valued")]
    items += [_series(w, "replica_throughput", "req/s", slowed) for w in ("noisy", "valued")]
    items += [
        _node_series("gpu-1", "probe_mlc_bandwidth_mib_s", "MiB/s", probe),
        _node_series("gpu-1", "probe_pgbench_latency_ms", "ms", latency),
    ]
    assert client.post("/v1/telemetry", json=batch(*items), headers=admin).status_code == 200
    for name in ("noisy", "valued"):
        body = {"cluster": "west", "replicas": 3, "replica_capacity": 100.0, "max_replicas": 50,
                "mode": "shadow", "performance_metric": "replica_throughput"}  # fmt: skip
        assert client.put(f"/v1/workloads/{name}", json=body, headers=admin).status_code == 200
    series = {
        (s["entity_id"], s["metric"]): s["id"]
        for s in client.get("/v1/series", headers=admin).json()["items"]
    }
    loads = [series[(w, "requests_per_second")] for w in ("noisy", "valued")]
    train = {"model": "seasonal_naive", "horizon": 6, "backtest": False, "series_ids": loads}
    assert client.post("/v1/models/train", json=train, headers=admin).status_code == 201
    valued = {"model": "seasonal_naive", "horizon": 6, "backtest": False,
              "series_ids": [series[("valued", "replica_throughput")]]}  # fmt: skip
    assert client.post("/v1/models/train", json=valued, headers=admin).status_code == 201

    summary = client.post("/v1/loop/run", headers=admin)
    assert summary.status_code == 200, summary.text
    assert summary.json()["node_interference"] == {"trained": 1, "failed": 0}, summary.json()
    targets = {t["name"]: t for t in client.get("/v1/loop/targets", headers=admin).json()}
    assert "trained interference model" in targets["noisy"]["last_detail"]["interference"]
    assert "served by 'seasonal_naive'" in targets["valued"]["last_detail"]["interference"]

    decision = client.get(f"/v1/decisions/{targets['noisy']['last_detail']['decision_id']}", headers=admin)
    explanation = decision.json()["explanation"]
    assert explanation["forecast"]["degradation"] is not None
    evidence = explanation["details"]["interference"]
    assert evidence["series_id"] == series[("noisy", "replica_throughput")] and evidence["base"] == "choice"
    assert evidence["member"] in ("persistence", "rolling_median", "lightgbm")
    other = client.get(f"/v1/decisions/{targets['valued']['last_detail']['decision_id']}", headers=admin)
    assert other.json()["explanation"]["forecast"]["degradation"] is None
    assert decision.json()["params"]["replicas"] > other.json()["params"]["replicas"]

    for sid, low, high in [
        (series[("noisy", "replica_throughput")], 0.3, 0.5),
        (series[("gpu-1", "probe_mlc_bandwidth_mib_s")], 0.2, 0.4),
        (series[("gpu-1", "probe_pgbench_latency_ms")], -0.05, 0.05),
    ]:
        served = client.get("/v1/forecasts", params={"series": sid, "horizon": 6}, headers=admin).json()
        assert served["target"] == "degradation", served
        assert low < served["points"][0]["quantiles"]["0.5"] < high, (sid, served["points"][0])

    models = len(client.get("/v1/models", headers=admin).json())
    more = [_series("noisy", "requests_per_second", "req/s", load[-1:] + 1.0)]
    more[0]["samples"] = [[int(T0 + STEP * COUNT), 201.0]]
    assert client.post("/v1/telemetry", json=batch(*more), headers=admin).status_code == 200
    again = client.post("/v1/loop/run", headers=admin).json()
    assert "node_interference" not in again  # nothing to train: every model is fresh
    assert len(client.get("/v1/models", headers=admin).json()) == models
