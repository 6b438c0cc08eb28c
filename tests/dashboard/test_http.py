"""The dashboard over plain HTTP on both backends: login cookie flags, CSRF refusals, read-only keys
see no approve button and a forged approval is refused, and the pages need a session."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.dashboard.conftest import Keys, csrf_of, login
from tests.helpers import REPO_ROOT, bearer

REPLAY_CONFIG = '{"step_seconds": 300, "max_steps": 120, "power": {"policy": "none"}}'


def _status(client: httpx.Client, keys: Keys, decision_id: int) -> str:
    answer = client.get(f"/v1/decisions/{decision_id}", headers=bearer(keys["read"]))
    status: str = answer.json()["status"]
    return status


def test_login_sets_a_signed_http_only_strict_cookie(client: httpx.Client, keys: Keys) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    wrong = login(client, "fs_not_a_key")
    assert wrong.status_code == 401 and "invalid API key" in wrong.text
    answer = login(client, keys["read"])
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("foresight_session="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert client.get("/").status_code == 200
    # a tampered cookie is no session
    value = client.cookies["foresight_session"]
    client.cookies.set("foresight_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_without_csrf_token_is_refused(client: httpx.Client, keys: Keys) -> None:
    client.get("/login")
    refused = client.post("/login", data={"api_key": keys["read"]})
    assert refused.status_code == 403
    forged = client.post("/login", data={"api_key": keys["read"], "csrf_token": "x" * 32})
    assert forged.status_code == 403


def test_approve_without_csrf_token_is_refused(
    client: httpx.Client, keys: Keys, seeded: dict[str, Any]
) -> None:
    assert login(client, keys["operate"]).status_code == 303
    decision_id = seeded["id"]
    refused = client.post(f"/decisions/{decision_id}/approve", data={})
    assert refused.status_code == 403 and "CSRF" in refused.text
    wrong = client.post(f"/decisions/{decision_id}/approve", data={"csrf_token": "nope"})
    assert wrong.status_code == 403
    assert _status(client, keys, decision_id) == "proposed"
    token = csrf_of(client.get("/decisions").text)
    done = client.post(f"/decisions/{decision_id}/approve", data={"csrf_token": token, "note": "ok"})
    assert done.status_code == 303
    assert _status(client, keys, decision_id) == "approved"
    audit = client.get("/decisions", params={"status": "approved"}).text
    assert "key:operate-key#" in audit


def test_read_only_key_sees_no_approve_button_and_cannot_forge_one(
    client: httpx.Client, keys: Keys, seeded: dict[str, Any]
) -> None:
    assert login(client, keys["read"]).status_code == 303
    page = client.get("/decisions").text
    assert f"#{seeded['id']}" in page and "Approve" not in page and "read-only" in page
    token = csrf_of(page)  # the logout form's token: valid for this session
    forged = client.post(f"/decisions/{seeded['id']}/approve", data={"csrf_token": token})
    assert forged.status_code == 403 and "operate" in forged.text
    assert _status(client, keys, seeded["id"]) == "proposed"
    assert "Start a replay" not in client.get("/replays").text
    refused = client.post("/replays", data={"csrf_token": token, "trace": "nab-ec2-cpu"})
    assert refused.status_code == 403


def test_pages_need_a_session_and_plotly_is_served_locally(client: httpx.Client) -> None:
    for path in ("/", "/power", "/nodes", "/decisions", "/replays", "/workloads/west/web", "/replays/1"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/login", path
    assert client.post("/decisions/1/approve", data={}).status_code == 403
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and "javascript" in plotly.headers["content-type"]
    assert len(plotly.content) > 1_000_000
    assert client.get("/static/../config.py").status_code == 404
    assert client.get("/docs").status_code == 200 and client.get("/healthz").status_code == 200


def test_reject_and_revoked_key_ends_the_session(
    client: httpx.Client, keys: Keys, make_key: Callable[..., str], seeded: dict[str, Any]
) -> None:
    key = make_key("operate", name="short-lived")
    assert login(client, key).status_code == 303
    token = csrf_of(client.get("/decisions").text)
    note = "<b>not now</b>"
    rejected = client.post(f"/decisions/{seeded['id']}/reject", data={"csrf_token": token, "note": note})
    assert rejected.status_code == 303 and _status(client, keys, seeded["id"]) == "rejected"
    audit = client.get("/decisions", params={"status": "rejected"}).text
    assert "&lt;b&gt;not now&lt;/b&gt;" in audit and note not in audit  # notes are escaped
    again = client.post(f"/decisions/{seeded['id']}/approve", data={"csrf_token": token})
    assert again.status_code == 303 and "error=" in again.headers["location"]  # rejected is final
    key_id = next(k["id"] for k in client.get("/v1/keys", headers=bearer(keys["admin"])).json()
                  if k["name"] == "short-lived")  # fmt: skip
    assert client.delete(f"/v1/keys/{key_id}", headers=bearer(keys["admin"])).status_code == 200
    assert client.get("/decisions", follow_redirects=False).headers["location"] == "/login"


def test_replay_of_an_uploaded_trace(client: httpx.Client, keys: Keys) -> None:
    assert login(client, keys["operate"]).status_code == 303
    token = csrf_of(client.get("/replays").text)
    lines = (REPO_ROOT / "service/sample_data/nab/ec2_cpu_utilization_24ae8d.csv").read_text().splitlines()
    form = {"csrf_token": token, "policies": "hpa", "trace_format": "long", "config": REPLAY_CONFIG}
    files = {"upload": ("cpu.csv", "\n".join(lines[:400]) + "\n", "text/csv")}
    started = client.post("/replays", data=form, files=files)
    assert started.status_code == 303 and started.headers["location"].startswith("/replays/")
    run_id = int(started.headers["location"].rsplit("/", 1)[1])
    deadline = time.monotonic() + 150  # generous: the run takes a few seconds on a quiet machine
    while (run := client.get(f"/v1/replays/{run_id}", headers=bearer(keys["read"])).json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, run
        time.sleep(0.5)
    assert run["status"] == "succeeded" and run["trace"] == "uploaded.csv", run
    page = client.get(f"/replays/{run_id}").text
    assert "succeeded" in page and "mean_replicas" in page
    assert client.get(f"/replays/{run_id}/report").status_code == 200
    bad = client.post("/replays", data=form | {"config": "{not json"})
    assert bad.status_code == 303 and "error=" in bad.headers["location"]
