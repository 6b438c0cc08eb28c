"""Canonical inputs from exporter names, and pod series summed to the workload instead of dropped:
cAdvisor CPU counters become `cpu_usage_cores` rates, DCGM's millijoule counter becomes watts, pods keep
their own series, and the rollup writes the workload's total per step once every pod has reported."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from service.db import Database
from service.integrations.rollup import roll_up_pods
from tests.helpers import T0
from tests.integrations.helpers import post_write, samples_of, stored_series, write_request

MS = 1000
STEP = 15


@pytest.fixture
def keys(make_key: Callable[..., str]) -> dict[str, str]:
    return {"ingest": make_key("ingest"), "read": make_key("read")}


def _cpu(pod: str, node: str, offset: float, cores: float, steps: int) -> tuple[dict[str, str], list]:
    """A pod's cAdvisor CPU counter using `cores` on average, scraped `offset` s into each step."""
    labels = {"__name__": "container_cpu_usage_seconds_total", "pod": pod, "namespace": "shop",
              "container": "app", "instance": f"{node}:10250", "cluster": "west"}  # fmt: skip
    stamps = [T0 + k * STEP + offset for k in range(steps)]
    return labels, [(int(t * MS), cores * (t - T0 + 100)) for t in stamps]


def test_pods_are_kept_and_summed_to_the_workload(
    client: httpx.Client, database: Database, keys: dict[str, str]
) -> None:
    steps = 12
    cgroup = {"__name__": "container_cpu_usage_seconds_total", "pod": "web-7d9f8c6b5-x2x9q",
              "namespace": "shop", "instance": "n1:10250", "job": "cadvisor", "cluster": "west"}  # fmt: skip
    request = write_request(
        _cpu("web-7d9f8c6b5-x2x9q", "n1", 1.0, 0.5, steps),
        _cpu("web-7d9f8c6b5-b7k2p", "n2", 6.0, 1.5, steps),
        (cgroup, [(int((T0 + 1) * MS), 9.0)]),  # the pod's own cgroup: would count it twice
    )
    answer = post_write(client, keys["ingest"], request)
    assert answer.status_code == 200, answer.text
    assert answer.json()["dropped"] == {"pod_cgroup_total": 1}  # counted, not silent
    found = stored_series(client, keys["read"], cluster="west", metric="cpu_usage_cores")
    assert sorted(s["labels"]["pod"] for s in found) == ["web-7d9f8c6b5-b7k2p", "web-7d9f8c6b5-x2x9q"]
    assert {(s["entity_kind"], s["entity_id"], s["unit"]) for s in found} == {("workload", "web", "cores")}
    for item in found:
        rates = [v for _, v in samples_of(client, keys["read"], item["id"])]
        expected = 0.5 if item["labels"]["pod"].endswith("x2x9q") else 1.5
        assert len(rates) == steps - 1 and all(abs(r - expected) < 1e-9 for r in rates)

    with database.session() as session:
        written = roll_up_pods(session)
    with database.session() as session:
        assert roll_up_pods(session) == 0  # once per bucket: a second replica writes nothing new
    total = [
        s for s in stored_series(client, keys["read"], cluster="west", metric="cpu_usage_cores")
        if "pod" not in s["labels"]
    ]  # fmt: skip
    assert len(total) == 1 and total[0]["labels"] == {"namespace": "shop"}
    summed = samples_of(client, keys["read"], total[0]["id"])
    assert written == len(summed) >= steps - 4
    assert all(abs(v - 2.0) < 1e-9 for _, v in summed), summed  # 0.5 + 1.5 cores in every bucket


def test_dcgm_energy_and_ksm_replicas_are_canonical(client: httpx.Client, keys: dict[str, str]) -> None:
    energy = {"__name__": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Hostname": "gpu-1", "gpu": "0",
              "cluster": "west"}  # fmt: skip
    replicas = {"__name__": "kube_deployment_status_replicas", "deployment": "web", "namespace": "shop",
                "cluster": "west"}  # fmt: skip
    request = write_request(
        (energy, [(int((T0 + k * STEP) * MS), 300_000.0 * k * STEP) for k in range(4)]),  # 300 W in mJ
        (replicas, [(int(T0 * MS), 3.0)]),
    )
    assert post_write(client, keys["ingest"], request).status_code == 200
    [watts] = stored_series(client, keys["read"], cluster="west", metric="gpu_energy_watts")
    assert watts["unit"] == "W" and watts["entity_id"] == "gpu-1"
    assert [round(v, 6) for _, v in samples_of(client, keys["read"], watts["id"])] == [300.0] * 3
    [running] = stored_series(client, keys["read"], cluster="west", metric="replicas")
    assert running["unit"] == "replicas" and samples_of(client, keys["read"], running["id"])[0][1] == 3.0
