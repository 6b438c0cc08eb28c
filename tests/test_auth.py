"""Auth through real HTTP: 401 without or with a bad/revoked key, 403 with the wrong scope, the key
lifecycle over the API and the CLI (the secret alone on the last line), and only hashes stored."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from service.db import Database
from tests.helpers import batch, bearer, series

# (method, path, body, the scope that must suffice); every scope not granting it must get 403
ENDPOINTS: list[tuple[str, str, Any, str]] = [
    ("POST", "/v1/telemetry", batch(series()), "ingest"),
    ("GET", "/v1/entities", None, "read"),
    ("GET", "/v1/series", None, "read"),
    ("GET", "/v1/series/1", None, "read"),
    ("GET", "/v1/series/1/samples", None, "read"),
    ("GET", "/v1/forecasts?series=1", None, "read"),
    ("GET", "/v1/forecasts/accuracy", None, "read"),
    ("GET", "/v1/models", None, "read"),
    ("POST", "/v1/models/train", {"model": "seasonal_naive"}, "operate"),
    ("GET", "/v1/workloads", None, "read"),
    ("GET", "/v1/workloads/web", None, "read"),
    ("PUT", "/v1/workloads/web", {"cluster": "west", "replica_capacity": 5}, "admin"),
    ("GET", "/v1/nodes", None, "read"),
    ("PUT", "/v1/nodes/n1", {"cluster": "west", "pool": "gpu"}, "admin"),
    ("GET", "/v1/power-domains", None, "read"),
    ("PUT", "/v1/power-domains/rack-1", {"cluster": "west", "budget_watts": 10000}, "admin"),
    ("POST", "/v1/recommendations/scaling", {"workload": "web"}, "operate"),
    ("POST", "/v1/recommendations/rightsizing", {"workload": "web"}, "operate"),
    ("POST", "/v1/recommendations/power", {"domain": "rack-1"}, "operate"),
    ("GET", "/v1/recommendations/oversubscription?domain=rack-1&profile=a100", None, "operate"),
    ("POST", "/v1/recommendations/oversubscription", {"domain": "rack-1", "profile": "a100"}, "operate"),
    ("POST", "/v1/recommendations/energy", {"workload": "web"}, "operate"),
    ("GET", "/v1/decisions", None, "read"),
    ("GET", "/v1/decisions/1", None, "read"),
    ("POST", "/v1/decisions/1/approve", None, "operate"),
    ("POST", "/v1/decisions/1/reject", None, "operate"),
    ("POST", "/v1/decisions/1/apply", None, "operate"),
    ("POST", "/v1/decisions/1/outcome", {"windows": 1, "violations": 0}, "operate"),
    ("POST", "/v1/nodes/n1/events", {"cluster": "west", "kind": "ecc_errors"}, "ingest"),
    ("POST", "/v1/node-events", {"events": [{"node": "n1", "cluster": "west", "kind": "ecc"}]}, "ingest"),
    ("GET", "/v1/nodes/n1/events", None, "read"),
    ("POST", "/v1/recommendations/mitigation", {"node": "n1", "event_id": 1}, "operate"),
    ("POST", "/v1/models/mitigation/train", {"n_estimators": 24}, "operate"),
    ("GET", "/v1/models/mitigation/rule", None, "read"),
    ("PUT", "/v1/models/mitigation/rule", {"clauses": [], "default": "observe"}, "admin"),
    ("DELETE", "/v1/models/mitigation/rule", None, "admin"),
    ("POST", "/api/v1/write", None, "ingest"),
    ("POST", "/v1/metrics", None, "ingest"),
    ("GET", "/v1/exports/prometheus", None, "read"),
    ("GET", "/v1/keda/workloads/web", None, "read"),
    ("POST", "/v1/replays", {"trace": "nab-ec2-cpu", "policy": "nope"}, "operate"),
    ("GET", "/v1/replays", None, "read"),
    ("GET", "/v1/replays/traces", None, "read"),
    ("GET", "/v1/replays/1", None, "read"),
    ("GET", "/v1/replays/1/report", None, "read"),
    ("GET", "/v1/replays/1/timeline", None, "read"),
    ("GET", "/v1/replays/1/trace", None, "read"),
    ("GET", "/v1/loop", None, "read"),
    ("GET", "/v1/loop/targets", None, "read"),
    ("PUT", "/v1/loop/targets/workload/web", {"frozen": True}, "admin"),
    ("POST", "/v1/loop/freeze", None, "admin"),
    ("POST", "/v1/loop/unfreeze", None, "admin"),
    ("POST", "/v1/loop/run", None, "operate"),
    ("GET", "/v1/keys", None, "admin"),
    ("POST", "/v1/keys", {"name": "x", "scopes": ["read"]}, "admin"),
    ("DELETE", "/v1/keys/999", None, "admin"),
]
GRANTS = {
    "ingest": {"ingest", "admin"}, "read": {"read", "operate", "admin"}, "operate": {"operate", "admin"},
    "admin": {"admin"},
}  # fmt: skip


def test_every_secured_route_is_in_the_matrix(client: httpx.Client) -> None:
    """A new endpoint cannot be forgotten: every secured operation of the OpenAPI has a matrix row."""
    listed = {(method, path.split("?")[0]) for method, path, _, _ in ENDPOINTS}
    missing = []
    for template, item in client.get("/openapi.json").json()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$")
        for method, operation in item.items():
            covered = any(m == method.upper() and pattern.match(p) for m, p in listed)
            if operation.get("security") and not covered:
                missing.append(f"{method.upper()} {template}")
    assert not missing, f"add these to ENDPOINTS: {missing}"


@pytest.mark.parametrize(
    ("method", "path", "body", "needed"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS]
)
def test_auth_matrix(
    client: httpx.Client, make_key: Callable[..., str], method: str, path: str, body: Any, needed: str
) -> None:
    def call(headers: dict[str, str]) -> httpx.Response:
        return client.request(method, path, json=body, headers=headers)

    assert call({}).status_code == 401
    assert call({}).headers["www-authenticate"] == "Bearer"
    assert call(bearer("fsk_000000000000_not-a-real-key")).status_code == 401
    assert call({"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401
    for scope in ("ingest", "read", "operate", "admin"):
        status = call(bearer(make_key(scope))).status_code
        if scope in GRANTS[needed]:
            assert status not in (401, 403), (scope, status)
        else:
            assert status == 403, (scope, status)


def test_key_lifecycle_over_the_api(
    client: httpx.Client, admin_headers: dict[str, str], database: Database
) -> None:
    created = client.post("/v1/keys", json={"name": "collector", "scopes": ["ingest"]}, headers=admin_headers)
    assert created.status_code == 201
    key = created.json()["key"]
    assert client.post("/v1/telemetry", json=batch(series()), headers=bearer(key)).status_code == 200
    listed = client.get("/v1/keys", headers=admin_headers).json()
    assert all("key" not in row for row in listed)
    assert {row["name"] for row in listed} == {"test", "collector"}
    with database.engine.connect() as connection:
        stored = [row[0] for row in connection.execute(text("SELECT key_hash FROM api_keys"))]
    assert key not in stored and all(len(h) == 64 for h in stored)
    revoked = client.delete(f"/v1/keys/{created.json()['id']}", headers=admin_headers)
    assert revoked.json()["revoked_at"] is not None
    refused = client.post("/v1/telemetry", json=batch(series()), headers=bearer(key))
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]


def test_invalid_scope_is_refused(client: httpx.Client, admin_headers: dict[str, str]) -> None:
    answer = client.post("/v1/keys", json={"name": "x", "scopes": ["root"]}, headers=admin_headers)
    assert answer.status_code == 422


def run_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"FORESIGHT_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_key_create_list_revoke(client: httpx.Client, migrated_url: str) -> None:
    created = run_cli(
        migrated_url, "keys", "create", "--scope", "read", "--scope", "ingest", "--name", "script"
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("fsk_") and " " not in key
    assert client.get("/v1/series", headers=bearer(key)).status_code == 200
    listed = run_cli(migrated_url, "keys", "list")
    assert "script" in listed.stdout and key not in listed.stdout
    key_id = next(line for line in listed.stdout.splitlines() if "script" in line).split()[1]
    assert run_cli(migrated_url, "keys", "revoke", key_id).returncode == 0
    assert client.get("/v1/series", headers=bearer(key)).status_code == 401
    bad = run_cli(migrated_url, "keys", "create", "--scope", "superuser")
    assert bad.returncode == 2 and "scopes" in bad.stderr
