"""Hostile input and edge protections through real HTTP: SQL injection and path traversal in every string
parameter (query, path, body) never give a 5xx nor touch the data; security headers on every answer;
body-size limits on every body route; per-key rate limits with Retry-After; keys compared in constant
time, rotated and revoked; secrets never in the logs (a real `foresight serve` at DEBUG)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from service.auth import keys as auth_keys
from service.db import Database
from service.ops.security import TokenBuckets
from tests.conftest import LiveServer, settings_for
from tests.helpers import batch, bearer, counts, series
from tests.reliability.fuzzing import seed

ATTACKS = [
    "' OR '1'='1", "1; DROP TABLE samples; --", "\"; DROP TABLE api_keys; --",
    "' UNION SELECT key_hash, key_hash FROM api_keys --", "web' AND pg_sleep(5) --", "%' OR 1=1 --",
    "../../../../etc/passwd", "..\\..\\..\\windows\\win.ini", "/etc/passwd", "....//....//etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "web\x00.json", "${jndi:ldap://127.0.0.1/a}", "{{7*7}}",
]  # fmt: skip
# valid bodies, so an attack in one field reaches the code behind the validation of the others
BASE_BODIES: dict[str, dict[str, Any]] = {
    "/v1/workloads/{name}": {"cluster": "west"}, "/v1/nodes/{name}": {"cluster": "west"},
    "/v1/power-domains/{name}": {"cluster": "west", "budget_watts": 1000},
    "/v1/recommendations/scaling": {"workload": "web"},
    "/v1/recommendations/rightsizing": {"workload": "web"},
    "/v1/recommendations/energy": {"workload": "web"}, "/v1/recommendations/power": {"domain": "rack-1"},
    "/v1/recommendations/mitigation": {"node": "n1", "event_id": 1},
    "/v1/nodes/{name}/events": {"cluster": "west", "kind": "ecc_errors"},
    "/v1/models/train": {"model": "seasonal_naive", "backtest": False},
}  # fmt: skip
LEAKS = ("root:x:0:0", "[extensions]", "syntax error", "Traceback", "psycopg", "sqlite3")
HEADERS = {
    "x-content-type-options": "nosniff", "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'", "referrer-policy": "no-referrer",
}  # fmt: skip


def _operations(client: httpx.Client) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in client.get("/openapi.json").json()["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _is_string(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "string" or any(_is_string(s) for s in schema.get("anyOf", []))


def _body_strings(spec: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = content.get("schema", {}).get("$ref", "")
    schema = spec["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
    return [name for name, prop in schema.get("properties", {}).items() if _is_string(prop)]


def _check_headers(answer: httpx.Response) -> None:
    for name, value in HEADERS.items():
        assert answer.headers.get(name) == value, (answer.request.url, name, dict(answer.headers))


def test_injection_and_traversal_in_every_string_parameter(
    live_server: LiveServer, database: Database, make_key: Callable[..., str], client: httpx.Client
) -> None:
    admin = bearer(make_key("admin", name="attacker-admin"))
    known = seed(live_server.url, admin)
    spec = client.get("/openapi.json").json()
    before = counts(database)
    tried = 0
    for method, path, operation in _operations(client):
        if not operation.get("security") or path.startswith("/v1/keys"):
            continue  # keys: a revoked admin key would end the test, not the attack
        params = operation.get("parameters", [])
        defaults = {p["name"]: str(known.get(p["name"], [1])[0]) for p in params if p["in"] == "path"}
        targets = [(p["in"], p["name"]) for p in params if _is_string(p["schema"])]
        targets += [("body", name) for name in _body_strings(spec, operation)]
        for where, name in targets:
            for attack in ATTACKS:
                url = path.format(**(defaults | ({name: quote(attack, safe="")} if where == "path" else {})))
                query = {name: attack} if where == "query" else None
                base = BASE_BODIES.get(path, {}) if "requestBody" in operation else None
                body = (base or {}) | {name: attack} if where == "body" else base
                answer = client.request(method, url, params=query, json=body, headers=admin)
                tried += 1
                assert answer.status_code < 500, (method, url, where, name, attack, answer.text)
                echoed = answer.text.replace(json.dumps(attack)[1:-1], "")  # errors may quote the input
                assert not any(leak in echoed for leak in LEAKS), (method, url, attack, answer.text)
                _check_headers(answer)
    print(f"injection / traversal attempts: {tried}")
    results = os.environ.get("FORESIGHT_RESULTS_DIR")  # the figure for docs/reliability.md
    if results:
        backend = "postgres" if database.dialect == "postgresql" else "sqlite"
        figure = {"bad_inputs_tried": tried, "server_errors": 0, "backend": backend, "attacks": len(ATTACKS)}
        (Path(results) / f"security_{backend}.json").write_text(json.dumps(figure, indent=2))
    assert tried >= 500, tried
    assert counts(database) == before  # nothing dropped, nothing half-written
    assert client.get("/v1/series", headers=admin).json()["total"] == before[0]
    for raw in ("/v1/../../etc/passwd", "/v1/series/..%2F..%2Fetc%2Fpasswd", "/%2e%2e/%2e%2e/etc/passwd"):
        answer = client.get(raw, headers=admin)
        assert answer.status_code in (404, 422), (raw, answer.status_code)
        assert "root:x:0:0" not in answer.text


def test_security_headers_on_every_answer(
    client: httpx.Client, make_key: Callable[..., str], admin_headers: dict[str, str]
) -> None:
    answers = [client.get(path) for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/nope")]
    answers += [client.get("/v1/series"), client.get("/v1/keys", headers=bearer(make_key("read")))]
    answers += [client.post("/v1/telemetry", content=b"{not json", headers=bearer(make_key("ingest")))]
    created = client.post("/v1/keys", json={"name": "x", "scopes": ["read"]}, headers=admin_headers)
    answers.append(created)
    assert [a.status_code for a in answers[-5:]] == [404, 401, 403, 400, 201]
    for answer in answers:
        _check_headers(answer)
    assert created.headers["cache-control"] == "no-store"  # the secret is never cached
    assert all(a.headers["cache-control"] == "no-store" for a in answers if a.url.path.startswith("/v1/"))


@pytest.fixture
def strict_server(migrated_url: str, database: Database) -> Iterator[LiveServer]:
    """A server with tiny limits: 2 KiB bodies, 3 requests per key (refill 1 per 1000 s)."""
    settings = settings_for(
        migrated_url, max_body_bytes=2048, rate_limit_per_second=0.001, rate_limit_burst=3,
        rate_limit_ingest_per_second=0.001, rate_limit_ingest_burst=2,
    )  # fmt: skip
    server = LiveServer(settings).start()
    yield server
    server.stop()


def test_body_limit_on_every_body_route(
    strict_server: LiveServer, client: httpx.Client, make_key: Callable[..., str]
) -> None:
    big = b'{"pad": "' + b"x" * 4096 + b'"}'
    with httpx.Client(base_url=strict_server.url, timeout=30) as http:
        routes = [(m, p) for m, p, op in _operations(client) if "requestBody" in op]
        assert len(routes) >= 15
        for method, path in routes:
            url = path.replace("{", "").replace("}", "")
            headers = bearer(make_key("admin")) | {"content-type": "application/json"}
            declared = http.request(method, url, content=big, headers=headers)
            assert declared.status_code == 413, (method, path, declared.status_code)
            assert declared.json()["error"]["code"] == "payload_too_large"
            _check_headers(declared)
            chunked = http.request(method, url, content=iter([big[:2000], big[2000:]]), headers=headers)
            assert chunked.status_code == 413, (method, path, chunked.status_code)


def test_rate_limit_per_key_with_retry_after(
    strict_server: LiveServer, make_key: Callable[..., str], database: Database
) -> None:
    reader, other, ingest = bearer(make_key("read")), bearer(make_key("read")), bearer(make_key("ingest"))
    with httpx.Client(base_url=strict_server.url, timeout=30) as http:
        assert [http.get("/v1/series", headers=reader).status_code for _ in range(3)] == [200] * 3
        limited = http.get("/v1/series", headers=reader)
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        _check_headers(limited)
        assert http.get("/v1/series", headers=other).status_code == 200  # buckets are per key
        sent = [
            http.post("/v1/telemetry", json=batch(series()), headers=ingest).status_code for _ in range(3)
        ]
        assert sent == [200, 200, 429]  # ingest has its own budget, the refused batch wrote nothing
        assert counts(database) == (1, 2)
        assert all(http.get("/healthz").status_code == 200 for _ in range(10))  # probes are never limited
        assert [http.get("/v1/series").status_code for _ in range(4)] == [401, 401, 401, 429]  # by address


def test_token_bucket_refills_and_stays_bounded() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2, burst=2, clock=lambda: now[0], capacity=3)
    assert [buckets.take("a") for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    now[0] = 0.5
    assert buckets.take("a") == 0.0
    for key in "bcdef":
        buckets.take(key)
    assert len(buckets.buckets) == 3  # a flood of keys cannot grow memory


def test_keys_compared_in_constant_time_and_no_prefix_oracle(
    client: httpx.Client, make_key: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = make_key("read")
    compared: list[tuple[str, str]] = []
    original = auth_keys.hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(auth_keys.hmac, "compare_digest", spy)
    wrong_secret = key[: key.rindex("_") + 1] + "A" * 43
    assert auth_keys.matches(key, auth_keys.hash_key(key)) and not auth_keys.matches(
        wrong_secret, auth_keys.hash_key(key)
    )
    assert len(compared) == 2 and all(len(a) == len(b) == 64 for a, b in compared)
    same_prefix = client.get("/v1/series", headers=bearer(wrong_secret))
    unknown = client.get("/v1/series", headers=bearer("fsk_000000000000_" + "A" * 43))
    assert same_prefix.status_code == unknown.status_code == 401
    bodies = [
        {k: v for k, v in a.json()["error"].items() if k != "request_id"} for a in (same_prefix, unknown)
    ]
    assert bodies[0] == bodies[1]  # nothing tells whether a prefix exists


def test_key_rotation(client: httpx.Client, admin_headers: dict[str, str]) -> None:
    old = client.post(
        "/v1/keys", json={"name": "collector", "scopes": ["ingest"]}, headers=admin_headers
    ).json()
    assert client.post("/v1/telemetry", json=batch(series()), headers=bearer(old["key"])).status_code == 200
    new = client.post(
        "/v1/keys", json={"name": "collector", "scopes": ["ingest"]}, headers=admin_headers
    ).json()
    both = [
        client.post("/v1/telemetry", json=batch(series()), headers=bearer(k)).status_code
        for k in (old["key"], new["key"])
    ]
    assert both == [200, 200]  # overlap: both work until the old one is revoked
    assert client.delete(f"/v1/keys/{old['id']}", headers=admin_headers).status_code == 200
    assert client.post("/v1/telemetry", json=batch(series()), headers=bearer(old["key"])).status_code == 401
    assert client.post("/v1/telemetry", json=batch(series()), headers=bearer(new["key"])).status_code == 200
    listed = {row["id"]: row for row in client.get("/v1/keys", headers=admin_headers).json()}
    assert listed[old["id"]]["revoked_at"] and listed[new["id"]]["revoked_at"] is None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_secrets_never_logged(migrated_url: str, database: Database, tmp_path: Path) -> None:
    env = os.environ | {"FORESIGHT_DATABASE_URL": migrated_url, "FORESIGHT_LOG_LEVEL": "DEBUG",
                        "FORESIGHT_JOBS_ENABLED": "false", "FORESIGHT_LOAD_SAMPLE_DATA": "false",
                        "FORESIGHT_BOOTSTRAP_ADMIN_KEY": "false"}  # fmt: skip
    cli = [sys.executable, "-m", "service.cli"]
    created = subprocess.run([*cli, "keys", "create", "--scope", "admin", "--name", "ops"], env=env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert created.returncode == 0, created.stderr
    admin = created.stdout.strip().splitlines()[-1]
    port = _free_port()
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen([*cli, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                  stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            deadline = time.monotonic() + 240
            while True:
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()[-2000:]
                time.sleep(0.2)
            new = http.post("/v1/keys", json={"name": "x", "scopes": ["ingest"]}, headers=bearer(admin))
            secret = new.json()["key"]
            assert http.post("/v1/telemetry", json=batch(series()), headers=bearer(secret)).status_code == 200
            assert http.get("/v1/keys", headers=bearer(admin)).status_code == 200
            assert http.get("/v1/series", headers=bearer(secret + "x")).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)
    logged = log.read_text() + created.stderr
    assert '"request"' in logged or "request" in logged  # the requests were logged, just not their secrets
    # the random part of `fsk_<prefix>_<secret>` may itself contain "_", so split at most twice
    for value in (admin, secret, admin.split("_", 2)[2], secret.split("_", 2)[2]):
        assert value not in logged
