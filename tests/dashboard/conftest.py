"""Dashboard test fixtures: a seeded database (workload with telemetry, a trained seasonal-naive model, a
proposed decision, a power domain, an unhealthy node with an event), keys per scope, a logged-in HTTP
client, and Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers import REPO_ROOT, batch, bearer, series

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
CHROMIUM = Path(os.environ.get("FORESIGHT_TEST_CHROMIUM", "/usr/bin/chromium"))
IN_CI = os.environ.get("FORESIGHT_REQUIRE_POSTGRES") == "1"
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
STEP = 300
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
Keys = dict[str, str]


def _load(count: int) -> list[list[float]]:
    """A daily sine around 100 req/s, 5-minute steps, ending a few steps before now."""
    end = (int(time.time()) // STEP - 2) * STEP
    t = end - STEP * np.arange(count)[::-1]
    rng = np.random.default_rng(1)
    values = 100 + 40 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 3, count)
    return [[int(a), round(float(b), 3)] for a, b in zip(t, values, strict=True)]


@pytest.fixture
def keys(make_key: Callable[..., str]) -> Keys:
    return {scope: make_key(scope, name=f"{scope}-key") for scope in ("ingest", "read", "operate", "admin")}


@pytest.fixture
def seeded(client: httpx.Client, keys: Keys) -> dict[str, Any]:
    """Everything the pages show, created through the REST API; returns the proposed decision."""
    admin = bearer(keys["admin"])

    def ok(answer: httpx.Response) -> dict[str, Any]:
        assert answer.status_code < 300, answer.text
        body: dict[str, Any] = answer.json()
        return body

    load = series("web", "requests_per_second", "req/s", _load(3 * 288), kind="workload")
    now = int(time.time()) // 60 * 60
    power = [series(n, "node_power_watts", samples=[[now - 60, 2950.0], [now, 3000.0]]) for n in ("g1", "g2")]
    total = series("rack-1", "power_watts", "W", [[t, 60 * v] for t, v in _load(288)], kind="power_domain")
    ok(client.post("/v1/telemetry", json=batch(load, total, *power), headers=admin))
    workload = {"cluster": "west", "replicas": 10, "replica_capacity": 10.0, "max_replicas": 40,
                "capacity_metric": "requests_per_second", "mode": "approve"}  # fmt: skip
    ok(client.put("/v1/workloads/web", json=workload, headers=admin))
    model = {"model": "seasonal_naive", "entity_kind": "workload"}
    ok(client.post("/v1/models/train", json=model, headers=admin))
    ok(client.post("/v1/models/train", json=model | {"entity_kind": "power_domain"}, headers=admin))
    decision = ok(client.post("/v1/recommendations/scaling", json={"workload": "web"}, headers=admin))
    ok(client.put("/v1/power-domains/rack-1", json={"cluster": "west", "budget_watts": 6500}, headers=admin))
    for name in ("g1", "g2"):
        hardware = {"profile": "a100", "gpus": 8, "priority": 0, "host_watts": 500.0}
        node = {"cluster": "west", "pool": "gpu", "power_domain": "rack-1", "hardware": hardware}
        ok(client.put(f"/v1/nodes/{name}", json=node, headers=admin))
    ok(client.put("/v1/nodes/g2", json={"cluster": "west", "status": "unhealthy"}, headers=admin))
    event = {"cluster": "west", "ts": now - 120, "kind": "ecc_errors", "signals": {"ecc_errors": 12}}
    stored = ok(client.post("/v1/nodes/g2/events", json=event, headers=admin))
    asked = {"node": "g2", "cluster": "west", "event_id": stored["id"]}
    ok(client.post("/v1/recommendations/mitigation", json=asked, headers=admin))
    return decision


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client: httpx.Client, key: str) -> httpx.Response:
    """Log `client` in through the form (it keeps the cookies); returns the answer to the POST."""
    form = client.get("/login")
    assert form.status_code == 200
    return client.post("/login", data={"api_key": key, "csrf_token": csrf_of(form.text)})


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium from Debian under Playwright; missing: a skip on a developer machine, a failure in CI.
    Module-scoped, so Playwright's event loop is gone before other modules run."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()
