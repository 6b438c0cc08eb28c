"""End to end with real parts: a real Prometheus scrapes a real node-exporter and an exporter process
(cAdvisor-, kube-state-metrics- and DCGM-shaped, tests/integrations/fake_exporter.py) and remote-writes
to Foresight; from that telemetry alone the control loop makes scaling, right-sizing and power
decisions, scales the Deployment through the Kubernetes test API server (the official client), sends
the power cap to a webhook receiver, and reads the replicas the cluster reached back from
kube-state-metrics as the decision's outcome."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from service.db import Database
from service.loop.jobs import run_once
from tests.conftest import LiveServer
from tests.helpers import bearer
from tests.integrations.conftest import Process, free_port
from tests.integrations.helpers import eventually
from tests.kube_server import kube_server
from tests.test_actuators import receiver
from tests.test_loop import _loop_database

CLUSTER = "e2e"


def _prometheus_config(targets: list[str], foresight: str, ingest_key: str) -> str:
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "external_labels": {"cluster": CLUSTER}},
        "scrape_configs": [{"job_name": f"job-{i}", "static_configs": [{"targets": [t]}]}
                           for i, t in enumerate(targets)],
        "remote_write": [{
            "url": f"{foresight}/api/v1/write",
            "authorization": {"credentials": ingest_key},
            "queue_config": {"max_shards": 1, "batch_send_deadline": "200ms", "min_backoff": "50ms",
                             "max_backoff": "500ms"},
        }],
    }  # fmt: skip
    return yaml.safe_dump(config)


def _put(http: httpx.Client, admin: dict[str, str], path: str, body: dict[str, Any]) -> None:
    answer = http.put(path, json=body, headers=admin)
    assert answer.status_code == 200, answer.text


def _series(http: httpx.Client, admin: dict[str, str], metric: str) -> list[dict[str, Any]]:
    answer = http.get("/v1/series", params={"cluster": CLUSTER, "metric": metric}, headers=admin)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _decisions(http: httpx.Client, admin: dict[str, str], kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = http.get(f"/v1/decisions?kind={kind}", headers=admin).json()["items"]
    return items


@pytest.mark.timeout(600)
def test_prometheus_to_loop_to_kubernetes(
    live_server: LiveServer,
    client: httpx.Client,
    database: Database,
    make_key: Callable[..., str],
    prometheus_binaries: dict[str, str],
    node_exporter: str,
    tmp_path: Path,
) -> None:
    admin = bearer(make_key("admin", name="e2e"))
    with kube_server() as (kube_url, kube), receiver([]) as (hook_url, hooks):
        kube.add_workload("shop", "Deployment", "web", 2)
        kube.nodes["gpu-1"] = {}
        exporter_port = free_port()
        exporter = Process(
            [sys.executable, "-m", "tests.integrations.fake_exporter", "--port", str(exporter_port),
             "--kube", kube_url],
            tmp_path / "exporter.log",
        )  # fmt: skip
        prometheus_port = free_port()
        config = tmp_path / "prometheus.yml"
        targets = [node_exporter, f"127.0.0.1:{exporter_port}"]
        config.write_text(_prometheus_config(targets, live_server.url, make_key("ingest")))
        prometheus = Process(
            [prometheus_binaries["prometheus"], f"--config.file={config}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            tmp_path / "prometheus.log",
        )  # fmt: skip
        try:
            exporter.wait_http(f"http://127.0.0.1:{exporter_port}/metrics", "the exporter")
            prometheus.wait_http(f"http://127.0.0.1:{prometheus_port}/-/ready", "Prometheus")
            _run(client, database, admin, kube_url, hook_url, kube, hooks)
        finally:
            prometheus.stop()
            exporter.stop()


def _run(
    http: httpx.Client,
    database: Database,
    admin: dict[str, str],
    kube_url: str,
    hook_url: str,
    kube: Any,
    hooks: list[dict[str, Any]],
) -> None:
    def arrived() -> bool:
        wanted = ("requests_per_second", "replicas", "cpu_usage_cores", "gpu_power_watts", "node_load1")
        found = {m: _series(http, admin, m) for m in wanted}
        if not all(found.values()):
            return False
        samples = http.get(f"/v1/series/{found['requests_per_second'][0]['id']}/samples", headers=admin)
        return len(samples.json()["timestamps"]) >= 15

    eventually(arrived, "the exporters' series in Foresight", timeout=240, interval=0.5)
    workload = {"cluster": CLUSTER, "replicas": 2, "replica_capacity": 40.0, "max_replicas": 20,
                "mode": "auto", "scale_target": "shop/Deployment/web"}  # fmt: skip
    _put(http, admin, "/v1/workloads/web", workload)
    _put(http, admin, "/v1/power-domains/rack-1", {"cluster": CLUSTER, "budget_watts": 2000, "mode": "auto"})
    node = {"cluster": CLUSTER, "pool": "gpu", "power_domain": "rack-1",
            "hardware": {"profile": "a100", "gpus": 8, "priority": 0, "host_watts": 400.0}}  # fmt: skip
    _put(http, admin, "/v1/nodes/gpu-1", node)
    train = {"model": "seasonal_naive", "config": {"season_length": 5}, "horizon": 6, "backtest": False,
             "cluster": CLUSTER, "entity_kind": "workload", "metric": "requests_per_second"}  # fmt: skip
    trained = http.post("/v1/models/train", json=train, headers=admin)
    assert trained.status_code == 201, trained.text
    _put(http, admin, "/v1/loop/targets/workload/web", {"cluster": CLUSTER, "actuator": "kubernetes"})
    _put(http, admin, "/v1/loop/targets/power_domain/rack-1", {"cluster": CLUSTER, "actuator": "webhook"})

    with _loop_database(database, kube_api_url=kube_url, webhook_url=hook_url) as loop_db:
        summary = run_once(loop_db)
        assert summary.get("decided", 0) >= 2, summary
        [scaling] = _decisions(http, admin, "scaling")
        assert scaling["status"] == "applied", scaling["history"]
        wanted = scaling["params"]["replicas"]
        assert wanted != 2 and kube.replicas("shop", "Deployment", "web") == wanted
        assert scaling["actuations"][-1]["actuator"] == "kubernetes"

        [power] = _decisions(http, admin, "power")
        assert power["status"] == "applied", power["history"]
        assert hooks and '"kind":"power"' in hooks[-1]["body"].decode()
        assert "power_limits_watts" in power["params"]

        [sizing] = _decisions(http, admin, "rightsizing")  # from the pods' cAdvisor series
        assert sizing["status"] == "applied", sizing["history"]
        requests = kube.workloads[("shop", "Deployment", "web")].containers[0]["resources"]["requests"]
        assert requests == sizing["actuations"][-1]["observed"]["requests"] and requests["cpu"] != "500m"

        def reached() -> dict[str, Any] | None:
            run_once(loop_db)  # reads kube-state-metrics' replicas as remote-written by Prometheus
            outcome = http.get(f"/v1/decisions/{scaling['id']}", headers=admin).json()["outcome"]
            return outcome if outcome and outcome["details"].get("replicas_reached") == wanted else None

        outcome = eventually(reached, "the reached replicas as the outcome", timeout=120, interval=1.0)
        assert outcome["details"]["replicas_reached"] == wanted
    workload_now = http.get("/v1/workloads/web", params={"cluster": CLUSTER}, headers=admin).json()
    assert workload_now["replicas"] == wanted
