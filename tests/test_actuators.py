"""The kubernetes and webhook actuators over real HTTP: the official client against the test API server
(tests/kube_server.py) with resourceVersion conflicts, dry runs, PodDisruptionBudget refusals and
timeouts; the webhook against a local receiver that checks the HMAC signature and answers 500s, 429s
with Retry-After, and 4xx refusals."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from service.actuators.base import ActuationRequest, ScaleTarget
from service.actuators.kubernetes import ACTION_ANNOTATION, KubernetesActuator
from service.actuators.webhook import WebhookActuator
from service.config import Settings
from service.db import Database
from service.loop.jobs import run_once
from tests.helpers import bearer
from tests.kube_server import KubeState, Pod, kube_server
from tests.test_loop import NAME, _decisions, _loop_database, _setup


@pytest.fixture
def kube() -> Iterator[tuple[KubernetesActuator, KubeState]]:
    with kube_server() as (url, state):
        state.add_workload("shop", "Deployment", "web", 2)
        state.add_workload("shop", "StatefulSet", "db", 3)
        settings = Settings(kube_api_url=url, kube_timeout_seconds=2, kube_conflict_retries=3)
        yield KubernetesActuator(settings), state


def _scale(replicas: int, target: str = "shop/Deployment/web", dry_run: bool = False) -> ActuationRequest:
    return ActuationRequest(7, "scaling", "scale_out", target, {"replicas": replicas}, dry_run)


def test_scale_patches_the_subresource_with_its_resource_version(
    kube: tuple[KubernetesActuator, KubeState],
) -> None:
    actuator, state = kube
    result = actuator.apply(_scale(5))
    assert result.status == "applied" and result.observed["replicas"] == 5, result
    assert result.observed["previous_replicas"] == 2
    assert state.replicas("shop", "Deployment", "web") == 5
    [patch] = state.patches()
    assert patch["body"] == {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 5}}
    assert patch["content_type"] == "application/strategic-merge-patch+json"
    assert actuator.current_replicas(ScaleTarget.parse("shop/Deployment/web")) == 5
    assert actuator.apply(_scale(5)).status == "skipped"  # already in place: nothing sent
    assert len(state.patches()) == 1
    assert actuator.apply(_scale(4, "shop/statefulsets/db")).status == "applied"
    assert state.replicas("shop", "StatefulSet", "db") == 4


def test_conflicts_are_read_again_and_retried_then_handed_back(
    kube: tuple[KubernetesActuator, KubeState],
) -> None:
    actuator, state = kube
    state.conflicts = 2
    result = actuator.apply(_scale(6))
    assert result.status == "applied" and result.attempts == 3, result
    assert state.replicas("shop", "Deployment", "web") == 6

    state.conflicts = 10  # a writer that never stops: give up for now, the loop retries later
    busy = actuator.apply(_scale(8))
    assert busy.status == "retry_later" and busy.retryable and "409" in busy.detail, busy
    assert state.replicas("shop", "Deployment", "web") == 6


def test_dry_run_is_validated_by_the_server_and_changes_nothing(
    kube: tuple[KubernetesActuator, KubeState],
) -> None:
    actuator, state = kube
    result = actuator.apply(_scale(9, dry_run=True))
    assert result.status == "dry_run" and "2 → 9" in result.detail, result
    assert state.replicas("shop", "Deployment", "web") == 2
    assert state.patches()[0]["query"].get("dryRun") == "All"


def test_refusals_and_timeouts_are_results_not_crashes(kube: tuple[KubernetesActuator, KubeState]) -> None:
    actuator, state = kube
    missing = actuator.apply(_scale(3, "shop/Deployment/ghost"))
    assert missing.status == "refused" and "not found" in missing.detail and not missing.retryable
    assert actuator.apply(_scale(3, "shop/CronJob/nightly")).status == "refused"
    assert actuator.apply(_scale(3, "web")).status == "refused"  # not namespace/kind/name
    bad = ActuationRequest(7, "scaling", "scale_out", "shop/Deployment/web", {"replicas": "5"})
    assert actuator.apply(bad).status == "refused"
    power = ActuationRequest(8, "power", "cap", "rack-1", {"power_limits_watts": {"s1": 300}})
    assert actuator.apply(power).status == "refused" and "webhook" in actuator.apply(power).detail

    state.delay_seconds = 3.0  # slower than the 2 s client timeout
    slow = actuator.apply(_scale(4))
    assert slow.status == "retry_later" and slow.retryable, slow
    assert actuator.current_replicas(ScaleTarget.parse("shop/Deployment/web")) is None


def test_rightsizing_sets_the_containers_requests(kube: tuple[KubernetesActuator, KubeState]) -> None:
    actuator, state = kube
    params = {"cpu": {"request": 0.2504, "lower": 0.1, "upper": 0.4}, "memory": {"request": 3.1e8}}
    rehearsal = actuator.apply(
        ActuationRequest(9, "rightsizing", "set_requests", "shop/Deployment/web", params, True)
    )
    assert rehearsal.status == "dry_run", rehearsal
    assert (
        state.workloads[("shop", "Deployment", "web")].containers[0]["resources"]["requests"]["cpu"] == "500m"
    )
    result = actuator.apply(ActuationRequest(9, "rightsizing", "set_requests", "shop/Deployment/web", params))
    assert result.status == "applied", result
    requests = state.workloads[("shop", "Deployment", "web")].containers[0]["resources"]["requests"]
    assert requests == {"cpu": "251m", "memory": "310000000"}
    hold = ActuationRequest(9, "rightsizing", "hold", "shop/Deployment/web", params)
    assert actuator.apply(hold).status == "skipped"
    state.workloads[("shop", "Deployment", "web")].containers.append({"name": "sidecar"})
    assert (
        actuator.apply(
            ActuationRequest(9, "rightsizing", "set_requests", "shop/Deployment/web", params)
        ).status
        == "refused"
    )


def _mitigation(action: str, node: str = "n1", dry_run: bool = False) -> ActuationRequest:
    return ActuationRequest(11, "mitigation", action, node, {"action": action}, dry_run)


def test_drain_cordons_evicts_and_waits_for_disruption_budgets(
    kube: tuple[KubernetesActuator, KubeState],
) -> None:
    actuator, state = kube
    state.nodes["n1"] = {}
    state.pods += [
        Pod("shop", "web-1", "n1"),
        Pod("shop", "db-0", "n1", owner_kind="StatefulSet", protected=True),
        Pod("kube-system", "exporter-x", "n1", owner_kind="DaemonSet"),
        Pod("shop", "web-2", "n2"),
    ]
    held = actuator.apply(_mitigation("drain_and_repair"))
    assert held.status == "retry_later" and held.observed["blocked_by_pdb"] == ["shop/db-0"], held
    assert state.nodes["n1"]["unschedulable"] is True
    assert state.nodes["n1"]["annotations"][ACTION_ANNOTATION] == "drain_and_repair"
    assert {p.name for p in state.pods} == {"db-0", "exporter-x", "web-2"}  # DaemonSet pods stay

    state.pods[0].protected = False  # the budget allows it now
    done = actuator.apply(_mitigation("drain_and_repair"))
    assert done.status == "applied" and done.observed["evicted"] == ["shop/db-0"], done
    assert {p.name for p in state.pods} == {"exporter-x", "web-2"}

    assert actuator.apply(_mitigation("observe", "n2")).status == "skipped"
    state.nodes["n2"] = {}
    rehearsal = actuator.apply(_mitigation("live_migrate", "n2", dry_run=True))
    assert rehearsal.status == "dry_run" and "unschedulable" not in state.nodes["n2"]
    assert [p.name for p in state.pods if p.node == "n2"] == ["web-2"]
    assert actuator.apply(_mitigation("reboot", "ghost")).status == "refused"


# -- webhook -----------------------------------------------------------------------------------------


@contextmanager
def receiver(answers: list[tuple[int, dict[str, str]]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook receiver answering from `answers` (then 200), recording each request."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"headers": dict(self.headers), "body": body})
            code, headers = answers.pop(0) if answers else (200, {})
            reply = json.dumps({"observed": {"replicas": 5}} if code == 200 else {"error": "no"}).encode()
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    finally:
        server.shutdown()
        server.server_close()


def _webhook(url: str, sleeps: list[float], **settings: Any) -> WebhookActuator:
    config = Settings(webhook_url=url, webhook_secret="s3cret", webhook_backoff_seconds=0.2, **settings)
    return WebhookActuator(config, sleep=sleeps.append)


def test_webhook_signs_retries_with_jitter_and_keeps_the_idempotency_key() -> None:
    sleeps: list[float] = []
    with receiver([(500, {}), (503, {}), (200, {})]) as (url, seen):
        result = _webhook(url, sleeps).apply(_scale(5))
    assert result.status == "applied" and result.attempts == 3 and result.observed == {"replicas": 5}
    assert len(seen) == 3 and {s["headers"]["Idempotency-Key"] for s in seen} == {"foresight-decision-7"}
    for request in seen:
        stamp = request["headers"]["X-Foresight-Timestamp"].encode()
        mac = hmac.new(b"s3cret", stamp + b"." + request["body"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-Foresight-Signature"] == f"sha256={mac}"
    assert json.loads(seen[0]["body"])["params"] == {"replicas": 5}
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.2 and 0 <= sleeps[1] <= 0.4  # full jitter, doubling


def test_webhook_honours_retry_after_refuses_on_4xx_and_hands_back_on_5xx() -> None:
    sleeps: list[float] = []
    with receiver([(429, {"Retry-After": "2"}), (200, {})]) as (url, _):
        assert _webhook(url, sleeps).apply(_scale(5)).status == "applied"
    assert sleeps == [2.0]
    with receiver([(400, {})]) as (url, seen):
        refused = _webhook(url, []).apply(_scale(5))
    assert refused.status == "refused" and "400" in refused.detail and len(seen) == 1
    with receiver([(500, {})] * 10) as (url, seen):
        down = _webhook(url, [], webhook_max_attempts=3).apply(_scale(5))
    assert down.status == "retry_later" and down.retryable and len(seen) == 3
    nowhere = _webhook("http://127.0.0.1:9/hook", [], webhook_max_attempts=2).apply(_scale(5))
    assert nowhere.status == "retry_later"
    assert WebhookActuator(Settings()).apply(_scale(5)).status == "failed"  # no URL configured


# -- through the loop ----------------------------------------------------------------------------------


def test_the_loop_scales_a_deployment_through_the_api_server_once(
    client: httpx.Client, database: Database, make_key: Callable[..., str]
) -> None:
    """Auto mode end to end: the loop decides, PATCHes the scale subresource through the official client,
    records the attempt, reads what the cluster reached as the outcome, and never applies twice."""
    admin = bearer(make_key("admin", name="ops"))
    namespace, kind, name = NAME.split("/")
    with kube_server() as (url, state):
        state.add_workload(namespace, kind, name, 4)
        _setup(client, admin, "auto", actuator="kubernetes")
        with _loop_database(database, kube_api_url=url) as loop_db:
            run_once(loop_db)
            [decision] = _decisions(client, admin)
            assert decision["status"] == "applied", decision["history"]
            wanted = decision["params"]["replicas"]
            assert state.replicas(namespace, kind, name) == wanted and len(state.patches()) == 1
            run_once(loop_db)  # the outcome is what the API server reports
            run_once(loop_db)
        assert len(state.patches()) == 1  # an applied decision is never sent again
        done = client.get(f"/v1/decisions/{decision['id']}", headers=admin).json()
        assert done["outcome"]["details"]["replicas_reached"] == wanted
        assert done["outcome"]["details"]["source"] == "kubernetes"
        [attempt] = done["actuations"]  # the audit trail: one attempt, what it sent, what came back
        assert attempt["actuator"] == "kubernetes" and attempt["status"] == "applied"
        assert attempt["observed"]["replicas"] == wanted and "scaled 4 →" in attempt["detail"]


def test_a_missing_deployment_fails_the_decision_with_the_servers_reason(
    client: httpx.Client, database: Database, make_key: Callable[..., str]
) -> None:
    admin = bearer(make_key("admin", name="ops"))
    with kube_server() as (url, state):
        _setup(client, admin, "auto", actuator="kubernetes")  # the API server has no such Deployment
        with _loop_database(database, kube_api_url=url) as loop_db:
            run_once(loop_db)
        [decision] = _decisions(client, admin)
        assert decision["status"] == "failed" and "not found" in decision["history"][-1]["note"]
        assert state.patches() == [] and decision["actuations"][-1]["status"] == "refused"
