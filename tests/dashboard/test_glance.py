"""The dashboard at a glance, over HTTP on both backends: one small chart per workload with units on
both axes and forecast bands that never dip below zero for counts, decision parameters as key/value
pairs with the change, a staleness banner for old data, every node listed, control characters in names
shown escaped, the key's name as the actor, and the savings view that starts a replay of stored load."""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any

import httpx

from tests.dashboard.conftest import Keys, csrf_of, login
from tests.helpers import batch, bearer, series

FIGURE = re.compile(r'<script type="application/json" id="fig-([\w-]+)">(.*?)</script>', re.S)


def _figures(page: str) -> dict[str, Any]:
    return {name: json.loads(html.unescape(body)) for name, body in FIGURE.findall(page)}


def test_overview_small_multiples_with_units_and_clipped_bands(
    client: httpx.Client, keys: Keys, seeded: dict[str, Any]
) -> None:
    assert login(client, keys["read"]).status_code == 303
    figures = _figures(client.get("/").text)
    web = figures["w1"]
    layout = web["layout"]
    assert layout["xaxis"]["title"]["text"] == "time (UTC)" and layout["yaxis"]["title"]["text"] == "req/s"
    assert layout["yaxis2"]["title"]["text"] == "replicas"
    names = {t["name"] for t in web["data"]}
    assert {"load", "80% interval", "forecast median", "replicas"} <= names, names
    replicas = next(t for t in web["data"] if t["name"] == "replicas")
    assert replicas["y"][-1] == seeded["params"]["replicas"]
    for page in ("/", "/workloads/west/web", "/power"):
        for figure in _figures(client.get(page).text).values():
            assert figure["layout"]["yaxis"]["title"]["text"], page  # every chart names its unit
            for trace in figure["data"]:
                if trace["name"].startswith("q") or "interval" in trace["name"]:
                    assert min(v for v in trace["y"] if v is not None) >= 0.0, (page, trace["name"])


def test_decision_parameters_read_as_pairs_with_the_change(
    client: httpx.Client, keys: Keys, seeded: dict[str, Any]
) -> None:
    assert login(client, keys["read"]).status_code == 303
    page = client.get("/decisions").text
    before, after = seeded["params"]["previous_replicas"], seeded["params"]["replicas"]
    assert f"{before} → {after}</strong> replicas" in page
    assert '"previous_replicas"' not in page.split("<pre>")[0]  # not raw JSON outside the evidence
    assert "asked by admin-key" in page  # the key's name, not key:admin-key#3


def test_stale_series_raise_a_banner(client: httpx.Client, keys: Keys, seeded: dict[str, Any]) -> None:
    admin = bearer(keys["admin"])
    old = int(time.time()) - 86_400
    samples = [[old - 300 * i, 10.0 + i % 7] for i in range(50)][::-1]
    body = batch(series("batch-jobs", "requests_per_second", "req/s", samples, kind="workload"))
    assert client.post("/v1/telemetry", json=body, headers=admin).status_code == 200
    assert client.put("/v1/workloads/batch-jobs", json={"cluster": "west", "replica_capacity": 5.0},
                      headers=admin).status_code == 200  # fmt: skip
    assert login(client, keys["read"]).status_code == 303
    overview = client.get("/").text
    banner = re.search(r'<p class="flash stale"[^>]*>(.*?)</p>', overview, re.S)
    assert banner and "batch-jobs" in banner.group(1) and "1 d old" in banner.group(1)
    assert "workload web" not in banner.group(1)  # the fresh one raises none
    assert "Stale data" in client.get("/workloads/west/batch-jobs").text
    assert "Stale data" not in client.get("/workloads/west/web").text


def test_every_node_listed_and_control_characters_escaped(
    client: httpx.Client, keys: Keys, seeded: dict[str, Any]
) -> None:
    admin = bearer(keys["admin"])
    weird = "spoof\x1b[2Jkind\u202e"
    event = {"cluster": "west", "kind": weird, "context": {"rack": "r\x07ow"}}
    answer = client.post("/v1/nodes/g2/events", json=event, headers=admin)
    if answer.status_code == 422:  # the edge refuses control characters: nothing to escape then
        assert "kind" in answer.text
        weird = None
    assert login(client, keys["read"]).status_code == 303
    page = client.get("/nodes").text
    assert 'id="node-g1"' in page and 'id="node-g2"' in page  # every node, healthy or not
    assert "\x1b" not in page and "\u202e" not in page and "\x07" not in page
    if weird is not None:
        assert "spoof\\x1b[2Jkind\\u202e" in page


def test_savings_view_replays_a_workload_and_links_back(
    client: httpx.Client, keys: Keys, seeded: dict[str, Any]
) -> None:
    assert login(client, keys["operate"]).status_code == 303
    page = client.get("/savings").text
    assert 'value="west/web"' in page
    form = {"csrf_token": csrf_of(page), "workload": "west/web", "seeds": "1", "hours": "24"}
    started = client.post("/savings", data=form)
    assert started.status_code == 303, started.text
    run_id = int(started.headers["location"].rsplit("/", 1)[1])
    deadline = time.monotonic() + 300  # a bound for a loaded machine, not a timing
    while (run := client.get(f"/v1/replays/{run_id}", headers=bearer(keys["read"])).json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, run
        time.sleep(0.5)
    assert run["status"] == "succeeded", run["error"]
    assert run["kind"] == "savings" and run["created_by"].startswith("key:operate-key#")
    shown = client.get(f"/replays/{run_id}").text
    saved = run["summary"]["savings"]["vs_static_peak"]["replica_hours_saved"]
    assert f"{saved:,.1f}</span> replica-hours saved against static peak" in shown
    figures = _figures(shown)
    assert figures["savings"]["layout"]["xaxis"]["title"]["text"] == "replica-hours"
    curve = next(t for t in figures["savings"]["data"] if t["name"] == "HPA, target swept")
    assert len(curve["x"]) == 5
    assert "Started by <span" in shown and ">operate-key</span>" in shown
    report = client.get(f"/replays/{run_id}/report").text
    assert f'<a href="/replays/{run_id}">' in report
    assert f"#{run_id}" in client.get("/savings").text
