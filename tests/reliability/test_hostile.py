"""Hostile input at the edge (issue 18), one test per class of probe, through real HTTP on both backends.

Every probe is sent on one kept-alive connection (`Probe`, over http.client so the socket is visible) and
must get a 4xx JSON answer naming the field, with a request id and the security headers; the database
must be unchanged, and the next request on the same connection must be answered. Each test fails on the
code before the issue's fixes (500s, 2xx answers that stored the input, or a dropped connection)."""

from __future__ import annotations

import gzip
import http.client
import json
import random
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from service.app import create_app
from service.db import Database
from service.integrations.backfill import PrometheusClient
from service.integrations.sources import Source
from tests.conftest import TABLES, LiveServer, settings_for
from tests.dashboard.conftest import login
from tests.helpers import T0, bearer, series

SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "content-security-policy", "referrer-policy")
SAMPLES = [[T0 + 300 * i, 40.0 + i % 7] for i in range(48)]
BAD_NAMES = {
    "trailing newline": "web\n", "leading space": " web", "NUL": "w\x00b", "ESC": "w\x1b[31mb",
    "C1 control": "w\x85b", "bidi override": "w\u202eevil", "DEL": "w\x7fb",
}  # fmt: skip


class Probe:
    """One kept-alive HTTP/1.1 connection to the live server."""

    def __init__(self, url: str, key: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=60)
        self.headers = {"Authorization": f"Bearer {key}"}
        self.local: tuple[str, int] | None = None

    def send(
        self, method: str, path: str, body: bytes | Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        sent = {**self.headers, **({"Content-Type": "application/json"} if raw is not None else {})}
        self.connection.request(method, path, body=raw, headers={**sent, **(headers or {})})
        answer = self.connection.getresponse()
        data = answer.read()
        found = {k.lower(): v for k, v in answer.getheaders()}
        if self.connection.sock is not None:
            self.local = self.connection.sock.getsockname()
        is_json = found.get("content-type", "").startswith("application/json")
        return answer.status, found, json.loads(data) if is_json else data.decode()

    def refused(
        self, method: str, path: str, body: bytes | Any, field: str, status: int = 422
    ) -> dict[str, Any]:
        """Send a probe; check the refusal names `field`, then that the connection still answers."""
        code, headers, answer = self.send(method, path, body)
        assert code == status, (path, field, code, answer)
        error = answer["error"]
        assert field in error["message"] or any(field in str(d) for d in error.get("details", [])), (
            field,
            error,
        )
        assert error["request_id"] == headers["x-request-id"]
        assert all(name in headers for name in SECURITY_HEADERS), headers
        before = self.local
        assert headers.get("connection", "").lower() != "close"
        code, _, _ = self.send("GET", "/healthz")
        assert code == 200 and self.local == before  # answered on the same connection
        return error

    def close(self) -> None:
        self.connection.close()


def rows(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (api_keys without last_used_at, which a request may touch)."""
    with database.engine.connect() as connection:
        found = {}
        for table in TABLES:
            columns = "id, name, prefix, scopes, revoked_at" if table == "api_keys" else "*"
            found[table] = sorted(
                tuple(str(v) for v in row)
                for row in connection.execute(text(f"SELECT {columns} FROM {table}"))
            )
        return found


@pytest.fixture
def admin_key(make_key: Callable[..., str]) -> str:
    return make_key("admin", name="hostile-admin")


@pytest.fixture
def probe(live_server: LiveServer, admin_key: str) -> Iterator[Probe]:
    found = Probe(live_server.url, admin_key)
    yield found
    found.close()


@pytest.fixture
def seeded(client: httpx.Client, admin_key: str) -> dict[str, Any]:
    """A workload with load, a node with an event, a power domain, a decision in approve mode."""
    admin = bearer(admin_key)

    def ok(answer: httpx.Response) -> Any:
        assert answer.status_code < 300, (answer.request.url, answer.text)
        return answer.json()

    load = series("web", "requests", "req/s", SAMPLES, kind="workload", cluster="west")
    ok(client.post("/v1/telemetry", json={"series": [load]}, headers=admin))
    workload = {"cluster": "west", "replicas": 3, "replica_capacity": 20, "capacity_metric": "requests",
                "mode": "approve"}  # fmt: skip
    ok(client.put("/v1/workloads/web", json=workload, headers=admin))
    ok(client.put("/v1/power-domains/rack-1", json={"cluster": "west", "budget_watts": 10000}, headers=admin))
    node = {"cluster": "west", "power_domain": "rack-1", "hardware": {"profile": "a100", "gpus": 8}}
    ok(client.put("/v1/nodes/n1", json=node, headers=admin))
    ok(client.post("/v1/nodes/n1/events", json={"cluster": "west", "kind": "ecc_errors"}, headers=admin))
    decision = ok(client.post("/v1/recommendations/scaling", json={"workload": "web"}, headers=admin))
    return {
        "decision": decision["id"],
        "series": ok(client.get("/v1/series", headers=admin))["items"][0]["id"],
    }


def _telemetry(entity: str = "n1", cluster: str = "west", metric: str = "m", labels: Any = None) -> Any:
    item = series(entity, metric, "W", [[T0, 1.0]], cluster=cluster)
    if labels is not None:
        item["labels"] = labels
    return {"series": [item]}


def _nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b'{"a":' * depth + leaf + b"}" * depth


def test_oversized_numbers_and_deep_nesting_are_refused_before_parsing(
    probe: Probe, database: Database, seeded: dict[str, Any]
) -> None:
    before = rows(database)
    big = b'{"series":[{"entity":{"kind":"node","id":"n1"},"metric":"m","unit":"W","samples":[[1731780000,'
    probe.refused("POST", "/v1/telemetry", big + b"9" * 5000 + b"]]}]}", "digits")
    probe.refused("POST", "/v1/telemetry", b"[" * 100_000 + b"]" * 100_000, "nested")
    probe.refused("PUT", "/v1/workloads/web", b"[" * 100_000 + b"]" * 100_000, "nested")
    deep_labels = b'{"series":[{"entity":{"kind":"node","id":"n1"},"metric":"m","unit":"W","labels":'
    probe.refused(
        "POST", "/v1/telemetry", deep_labels + _nested(5000, b'"x"') + b',"samples":[[1,1]]}]}', "nested"
    )
    probe.refused("PUT", "/v1/workloads/web", b'{"cluster":"west","slo":' + _nested(900) + b"}", "nested")
    outcome = f"/v1/decisions/{seeded['decision']}/outcome"
    probe.refused("POST", outcome, b'{"windows":1,"details":' + _nested(900) + b"}", "nested")
    probe.refused(
        "PUT", "/v1/nodes/n1", b'{"cluster":"west","hardware":{"gpus":' + b"7" * 5000 + b"}}", "digits"
    )
    code, _, _ = probe.send(
        "POST", "/v1/metrics", gzip.compress(_nested(5000)),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )  # fmt: skip
    assert code == 422  # OTLP JSON, bounded after decompression
    assert rows(database) == before


def test_names_are_printable_without_surrounding_whitespace_everywhere(
    probe: Probe, database: Database, seeded: dict[str, Any]
) -> None:
    before = rows(database)
    for bad in BAD_NAMES.values():
        probe.refused("POST", "/v1/telemetry", _telemetry(entity=bad), "entity.id")
        probe.refused("POST", "/v1/telemetry", _telemetry(cluster=bad), "entity.cluster")
        probe.refused("POST", "/v1/telemetry", _telemetry(labels={"gpu": bad}), "labels.gpu")
        probe.refused("PUT", "/v1/workloads/web", {"cluster": bad}, "body.cluster")
        probe.refused("PUT", "/v1/nodes/n1", {"cluster": "west", "pool": bad}, "body.pool")
        probe.refused("POST", "/v1/nodes/n1/events", {"cluster": bad, "kind": "ecc_errors"}, "body.cluster")
        probe.refused("POST", "/v1/keys", {"name": bad, "scopes": ["read"]}, "body.name")
        probe.refused("POST", "/v1/recommendations/scaling", {"workload": bad}, "body.workload")
    probe.refused("POST", "/v1/telemetry", _telemetry(metric="m\n"), "metric")
    probe.refused("POST", "/v1/telemetry", _telemetry(labels={"gpu\n": "0"}), "labels.gpu")
    probe.refused("PUT", "/v1/workloads/w%E2%80%AEevil", {"cluster": "west"}, "path.name")
    probe.refused("GET", "/v1/series?cluster=west%0A", None, "query.cluster")
    probe.refused("POST", "/v1/node-events", {"events": [{"node": "n1\x1b", "cluster": "west", "kind": "x"}]},
                  "node")  # fmt: skip
    assert rows(database) == before


def test_labels_must_be_an_object(probe: Probe, database: Database) -> None:
    before = rows(database)
    for labels in ([], False, "gpu=0", 1):
        probe.refused("POST", "/v1/telemetry", _telemetry(labels=labels), "labels")
    assert rows(database) == before


def test_config_numbers_are_strict_and_profiles_known(
    probe: Probe, database: Database, seeded: dict[str, Any]
) -> None:
    before = rows(database)
    for slo in ({"target_utilisation": True}, {"sla_penalty": "abc"}, {"epsilon": "0.1"}):
        probe.refused("PUT", "/v1/workloads/web", {"cluster": "west", "slo": slo}, "slo")
    probe.refused("PUT", "/v1/workloads/web", {"cluster": "west", "replicas": "5"}, "body.replicas")
    nan = b'{"cluster":"west","hardware":{"host_watts":NaN}}'
    probe.refused("PUT", "/v1/nodes/n1", nan, "hardware.host_watts")
    bad_hardware = [
        ({"gpus": True}, "gpus"), ({"gpus": "8"}, "gpus"), ({"profile": "tpu-v9"}, "profile"),
        ({"priority": 1.5}, "priority"),
    ]  # fmt: skip
    for hardware, field in bad_hardware:
        probe.refused("PUT", "/v1/nodes/n1", {"cluster": "west", "hardware": hardware}, f"hardware.{field}")
    assert rows(database) == before


def test_node_events_are_bounded(probe: Probe, database: Database, seeded: dict[str, Any]) -> None:
    before = rows(database)
    event = {"cluster": "west", "kind": "ecc_errors"}
    probe.refused("POST", "/v1/nodes/n1/events", event | {"ts": -86400}, "ts")
    probe.refused("POST", "/v1/nodes/n1/events", event | {"ts": "1969-12-31T00:00:00Z"}, "ts")
    # fleets name their own actions (a mitigation model learns them), but a name still obeys the policy
    probe.refused("POST", "/v1/nodes/n1/events", event | {"action_taken": "reboot\x1b[2J"}, "action_taken")
    probe.refused("POST", "/v1/nodes/n1/events", event | {"action_taken": " reboot"}, "action_taken")
    many = {f"s{i}": 1.0 for i in range(10_000)}
    probe.refused("POST", "/v1/nodes/n1/events", event | {"signals": many}, "signals")
    probe.refused("POST", "/v1/nodes/n1/events", event | {"signals": {"errors": True}}, "signals")
    probe.refused("POST", "/v1/nodes/n1/events", {"cluster": "probe\n", "kind": "ecc_errors"}, "cluster")
    bulk = [event | {"node": "n1", "ts": T0 + i} for i in range(10_001)]  # over a request's worth
    probe.refused("POST", "/v1/node-events", {"events": bulk}, "events")
    assert rows(database) == before


def test_unknown_fields_and_query_parameters_are_named(
    probe: Probe, database: Database, seeded: dict[str, Any]
) -> None:
    before = rows(database)
    probe.refused("POST", "/v1/models/train", {"model": "seasonal_naive", "series_id": [1]}, "series_id")
    probe.refused("PUT", "/v1/workloads/web", {"cluster": "west", "replica": 3}, "replica")
    probe.refused("POST", "/v1/keys", {"name": "k", "scopes": ["read"], "admin": True}, "admin")
    probe.refused("GET", "/v1/series?serie=1", None, "query.serie")
    probe.refused("GET", "/v1/decisions?stauts=applied", None, "query.stauts")
    probe.refused("GET", "/v1/keys?all=1", None, "query.all")
    assert rows(database) == before


def test_replay_requests_are_checked_before_they_are_queued(probe: Probe, database: Database) -> None:
    before = rows(database)
    upload = {"trace_csv": "ts,value\n0,1\n", "trace_format": "long", "policy": "hpa"}
    for name in (".", ".."):
        probe.refused("POST", "/v1/replays", upload | {"trace_name": name}, "trace_name")
    bundled = {"trace": "azure-code-small", "policy": "hpa"}
    for step in (0, -1, True, "10"):
        probe.refused("POST", "/v1/replays", bundled | {"config": {"step_seconds": step}}, "step_seconds")
    assert rows(database) == before


def test_a_stored_invalid_slo_is_a_clear_422(
    probe: Probe, database: Database, seeded: dict[str, Any]
) -> None:
    with database.engine.begin() as connection:  # written before PUT checked slo numbers
        connection.execute(text("""UPDATE workloads SET slo = '{"sla_penalty": "abc"}'"""))
    before = rows(database)
    probe.refused("POST", "/v1/recommendations/scaling", {"workload": "web"}, "sla_penalty")
    assert rows(database) == before


def test_outcomes_only_on_applied_decisions(probe: Probe, database: Database, seeded: dict[str, Any]) -> None:
    before = rows(database)
    error = probe.refused(
        "POST", f"/v1/decisions/{seeded['decision']}/outcome", {"windows": 4}, "applied", 409
    )
    assert "proposed" in error["message"]
    assert rows(database) == before
    assert probe.send("POST", f"/v1/decisions/{seeded['decision']}/approve", {})[0] == 200
    assert probe.send("POST", f"/v1/decisions/{seeded['decision']}/apply", {})[0] == 200
    assert probe.send("POST", f"/v1/decisions/{seeded['decision']}/outcome", {"windows": 4})[0] == 201


def test_a_get_writes_nothing(probe: Probe, database: Database, seeded: dict[str, Any]) -> None:
    before = rows(database)
    code, _, answer = probe.send("GET", "/v1/recommendations/oversubscription?domain=rack-1&profile=a100")
    assert code == 200 and answer["id"] == 0 and answer["params"]["extra_servers"] >= 0
    assert rows(database) == before
    question = {"domain": "rack-1", "profile": "a100"}
    code, _, recorded = probe.send("POST", "/v1/recommendations/oversubscription", question)
    assert code == 201 and recorded["id"] > 0 and recorded["params"] == answer["params"]


def test_errors_match_the_api_and_do_not_name_internals(
    probe: Probe, client: httpx.Client, admin_key: str, seeded: dict[str, Any]
) -> None:
    admin = bearer(admin_key)
    body = {
        "model": "lightgbm",
        "config": {"max_horizon": 4},
        "backtest": False,
        "metric": "requests",
    }
    trained = client.post("/v1/models/train", json=body, headers=admin)
    assert trained.status_code == 201, trained.text
    series_id = seeded["series"]
    assert probe.send("GET", f"/v1/forecasts?series={series_id}&horizon=4")[0] == 200
    error = probe.refused("GET", f"/v1/forecasts?series={series_id}&horizon=5", None, "horizon")
    assert "at most 4" in str(error) and "Forecaster" not in error["message"]
    for step in ("1e30d", "100000000000000000000000000000d"):
        error = probe.refused("GET", f"/v1/series/{series_id}/samples?step={step}", None, "step")
        assert "64 bits" not in error["message"]


def test_rate_limits_are_keyed_by_the_verified_key(
    migrated_url: str, database: Database, make_key: Callable[..., str]
) -> None:
    settings = settings_for(migrated_url, rate_limit_per_second=0.001, rate_limit_burst=3)
    server = LiveServer(settings).start()
    try:
        real = bearer(make_key("read"))
        with httpx.Client(base_url=server.url, timeout=30) as http:
            made_up = [
                http.get("/v1/series", headers=bearer(f"fs_made_up_{i}")).status_code for i in range(5)
            ]
            assert made_up == [401, 401, 401, 429, 429]  # rotating tokens buys no fresh bucket
            assert [http.get("/v1/series", headers=real).status_code for _ in range(4)] == [
                200,
                200,
                200,
                429,
            ]
        with httpx.Client(base_url=server.url, timeout=30) as http:
            flood = [http.get("/v1/series", headers=bearer(f"fs_flood_{i}")).status_code for i in range(50)]
            assert set(flood) == {429}
    finally:
        server.stop()


def test_logout_revokes_the_session_on_the_server(
    live_server: LiveServer, make_key: Callable[..., str]
) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as browser:
        assert login(browser, make_key("read")).status_code == 303
        copied = dict(browser.cookies)
        assert browser.get("/", follow_redirects=False).status_code == 200
        page = browser.get("/").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert browser.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    with httpx.Client(base_url=live_server.url, timeout=30, cookies=copied) as thief:
        answer = thief.get("/", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/login"


@pytest.fixture
def failing_server(migrated_url: str, database: Database) -> Iterator[str]:
    """The real app with one extra route that raises, under uvicorn: the answer to an unexpected error."""
    app: FastAPI = create_app(settings_for(migrated_url))

    @app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("an unexpected bug")

    server = LiveServer.__new__(LiveServer)
    LiveServer.__init__(server, settings_for(migrated_url))
    server.server = uvicorn.Server(uvicorn.Config(app, log_level="critical", access_log=False, lifespan="on"))
    server.thread = threading.Thread(
        target=server.server.run, kwargs={"sockets": [server.socket]}, daemon=True
    )
    server.start()
    yield server.url
    server.stop()


def test_a_500_is_json_with_request_id_and_keeps_the_connection(
    failing_server: str, make_key: Callable[..., str]
) -> None:
    probe = Probe(failing_server, make_key("read"))
    try:
        error = probe.refused("GET", "/v1/boom", None, "internal", status=500)
        assert error["code"] == "internal_error" and "unexpected bug" not in error["message"]
    finally:
        probe.close()


class _Prometheus(BaseHTTPRequestHandler):
    """Refuses twice (429 with Retry-After, then a bare 503), then answers."""

    answers: ClassVar[list[tuple[int, dict[str, str]]]] = []

    def do_GET(self) -> None:
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def test_backfill_honours_retry_after_and_jitters(tmp_path: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    waits: dict[int, list[float]] = {}
    try:
        for seed in (1, 2):
            _Prometheus.answers = [(429, {"Retry-After": "2"}), (503, {})]
            waits[seed] = []
            client = PrometheusClient(
                Source(name="p", url=url, match=["up"]), sleep=waits[seed].append, rng=random.Random(seed)
            )
            assert client.get("/api/v1/query", {"query": "up"}) == {"resultType": "matrix", "result": []}
            client.close()
    finally:
        server.shutdown()
    for seed in (1, 2):
        assert len(waits[seed]) == 2
        assert 2 <= waits[seed][0] <= 2.5  # the server's Retry-After, and a little jitter
        assert 0 <= waits[seed][1] <= 1.0  # exponential backoff with full jitter: uniform in [0, 0.5 * 2]
    assert waits[1] != waits[2]  # two clients refused together do not come back in lockstep
