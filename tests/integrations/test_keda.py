"""KEDA's metrics-api answer survives the HPA that KEDA drives: with the behavior documented in
docs/integrations.md the HPA's own arithmetic (AverageValue target, tolerance, stabilization, rate
policies) lands on exactly the recommended count, for every pair of current and recommended counts;
with the HPA's defaults it would not (a 5 % change is ignored), and the answer says so."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import numpy as np
import yaml

from policies.behavior import Behavior, ScaleHistory, apply_behavior, hpa_replicas_for_average_value
from tests.helpers import REPO_ROOT, T0, batch, bearer


def _documented_scaled_object() -> dict[str, object]:
    text = (REPO_ROOT / "docs" / "integrations.md").read_text()
    block = re.search(r"<!-- keda-scaledobject:.*?-->\n```yaml\n(.*?)```", text, re.S)
    assert block, "docs/integrations.md lost its ScaledObject block"
    documents = [d for d in yaml.safe_load_all(block.group(1)) if d and d.get("kind") == "ScaledObject"]
    return documents[0]


def _hpa_replicas(behavior: Behavior, metric: int, current: int, low: int, high: int) -> int:
    """One HPA reconciliation on KEDA's answer: the metric's desired count, then behavior and bounds."""
    tolerance = behavior.scale_up.tolerance if metric > current else behavior.scale_down.tolerance
    desired = hpa_replicas_for_average_value(float(metric), 1.0, current, tolerance)
    return apply_behavior(
        behavior, min(max(desired, low), high), current, 1e6, ScaleHistory(), low, high
    ).replicas


def test_documented_behavior_reaches_exactly_the_recommended_count() -> None:
    spec = _documented_scaled_object()["spec"]
    assert isinstance(spec, dict)
    trigger = spec["triggers"][0]["metadata"]
    assert trigger["valueLocation"] == "replicas" and trigger["targetValue"] == "1"
    behavior = Behavior.from_mapping(spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"])
    low, high = int(spec["minReplicaCount"]), int(spec["maxReplicaCount"])
    for current in range(low, high + 1):
        for wanted in range(low, high + 1):
            assert _hpa_replicas(behavior, wanted, current, low, high) == wanted, (current, wanted)


def test_the_hpa_defaults_would_ignore_small_changes() -> None:
    assert _hpa_replicas(Behavior(), 21, 20, 1, 100) == 20
    assert _hpa_replicas(Behavior(), 30, 20, 1, 100) == 30


def test_the_answer_warns_when_the_default_tolerance_would_swallow_it(
    client: httpx.Client, make_key: Callable[..., str]
) -> None:
    admin = bearer(make_key("admin"))
    t = T0 + 300 * np.arange(600)
    item = {
        "entity": {"kind": "workload", "id": "web", "cluster": "west"},
        "metric": "requests_per_second",
        "unit": "req/s",
        "samples": [[int(a), 205.0] for a in t],
    }
    assert client.post("/v1/telemetry", json=batch(item), headers=admin).status_code == 200
    body = {"cluster": "west", "replicas": 20, "replica_capacity": 10.0, "max_replicas": 100, "mode": "auto"}
    assert client.put("/v1/workloads/web", json=body, headers=admin).status_code == 200
    train = {"model": "seasonal_naive", "horizon": 6, "backtest": False}
    assert client.post("/v1/models/train", json=train, headers=admin).status_code == 201
    decided = client.post(
        "/v1/recommendations/scaling", json={"workload": "web", "epsilon": 0.5}, headers=admin
    )
    assert decided.status_code == 201 and decided.json()["status"] == "applied", decided.text
    answer = client.get("/v1/keda/workloads/web", headers=admin).json()
    wanted = decided.json()["params"]["replicas"]
    assert answer["replicas"] == wanted and answer["stale"] is False and answer["expires_at"]
    assert answer["within_default_hpa_tolerance"] == (wanted != 20 and abs(wanted / 20 - 1) <= 0.1)
