"""A small Kubernetes API server for tests: the endpoints the `kubernetes` actuator calls, over real HTTP.

No kube-apiserver can run on these machines (no Docker; no package ships one), so the actuator is tested
through the official client against this server, which implements what it relies on with the API's own
semantics: the `scale` subresource of Deployments and StatefulSets (GET; PATCH with a `resourceVersion`
precondition answered 409 on a mismatch; `dryRun=All` validates without persisting), node PATCH (cordon
and annotations), pod listing by `spec.nodeName`, and the Eviction API (201, or 429 while a
PodDisruptionBudget forbids it). Tests script conflicts (a concurrent writer), refusals and slowness.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SCALE = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/(deployments|statefulsets)/([^/]+)/scale$")
WORKLOAD = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/(deployments|statefulsets)/([^/]+)$")
NODE = re.compile(r"^/api/v1/nodes/([^/]+)$")
EVICTION = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/eviction$")


@dataclass
class Workload:
    replicas: int
    version: int = 1
    containers: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}}
        ]
    )


@dataclass
class Pod:
    namespace: str
    name: str
    node: str
    owner_kind: str = "ReplicaSet"
    protected: bool = False
    """A PodDisruptionBudget forbids evicting it now (429)."""


@dataclass
class KubeState:
    """What the server holds and what it was asked; tests read and script it."""

    workloads: dict[tuple[str, str, str], Workload] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    conflicts: int = 0
    """The next this-many scale PATCHes meet a concurrent writer (their version moves on: 409)."""
    delay_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_workload(self, namespace: str, kind: str, name: str, replicas: int) -> None:
        self.workloads[(namespace, kind, name)] = Workload(replicas)

    def replicas(self, namespace: str, kind: str, name: str) -> int:
        return self.workloads[(namespace, kind, name)].replicas

    def patches(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "PATCH" and "/scale" in r["path"]]


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    state: KubeState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        return

    def _reply(self, code: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null") if length else None

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = self._body() if method in ("PATCH", "POST", "PUT") else None
        state = self.state
        with state.lock:
            state.requests.append({"method": method, "path": parts.path, "query": query, "body": body,
                                   "content_type": self.headers.get("Content-Type")})  # fmt: skip
        if state.delay_seconds:
            time.sleep(state.delay_seconds)
        with state.lock:
            code, payload = self._route(method, parts.path, query, body)
        self._reply(code, payload)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        if match := SCALE.match(path) or WORKLOAD.match(path):
            namespace, resource, name = match.groups()
            return self._apps(method, path.endswith("/scale"), namespace, resource, name, query, body)
        if (match := NODE.match(path)) and method == "PATCH":
            return self._node(match.group(1), query, body)
        if path == "/api/v1/pods" and method == "GET":
            return self._pods(query)
        if (match := EVICTION.match(path)) and method == "POST":
            return self._evict(match.group(1), match.group(2), body)
        return 404, _status(404, "NotFound", f"{method} {path} is not served here")

    def _apps(
        self,
        method: str,
        scale: bool,
        namespace: str,
        resource: str,
        name: str,
        query: dict[str, str],
        body: Any,
    ) -> tuple[int, dict[str, Any]]:
        """A Deployment / StatefulSet or its scale subresource: the lookup and the `resourceVersion`
        precondition both share."""
        kind = {"deployments": "Deployment", "statefulsets": "StatefulSet"}[resource]
        workload = self.state.workloads.get((namespace, kind, name))
        if workload is None:
            return 404, _status(404, "NotFound", f'{resource}.apps "{name}" not found')
        if method == "PATCH":
            if scale and self.state.conflicts > 0:
                self.state.conflicts -= 1
                workload.version += 1  # another writer got there first
            wanted = (body or {}).get("metadata", {}).get("resourceVersion")
            if wanted is not None and wanted != str(workload.version):
                return 409, _status(409, "Conflict", "the object has been modified; please apply your "
                                    "changes to the latest version and try again")  # fmt: skip
        handle = self._scale if scale else self._workload
        return handle(method, workload, namespace, kind, name, query, body)

    def _scale(
        self,
        method: str,
        workload: Workload,
        namespace: str,
        kind: str,
        name: str,
        query: dict[str, str],
        body: Any,
    ) -> tuple[int, dict[str, Any]]:
        if method == "PATCH":
            replicas = (body or {}).get("spec", {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                return 422, _status(422, "Invalid", "spec.replicas: must be a non-negative integer")
            if query.get("dryRun") != "All":
                workload.replicas = replicas
                workload.version += 1
            return 200, self._scale_object(namespace, name, replicas, workload.version)
        if method == "GET":
            return 200, self._scale_object(namespace, name, workload.replicas, workload.version)
        return 405, _status(405, "MethodNotAllowed", method)

    def _workload(
        self,
        method: str,
        workload: Workload,
        namespace: str,
        kind: str,
        name: str,
        query: dict[str, str],
        body: Any,
    ) -> tuple[int, dict[str, Any]]:
        if method == "PATCH":
            patched = (body or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
            containers = [dict(c) for c in workload.containers]
            for change in patched:  # strategic merge: containers are merged by name
                for container in containers:
                    if container["name"] == change.get("name"):
                        container["resources"] = {
                            **container.get("resources", {}),
                            **change.get("resources", {}),
                        }
            if query.get("dryRun") != "All":
                workload.containers, workload.version = containers, workload.version + 1
        selector = {"matchLabels": {"app": name}}
        template = {"metadata": {"labels": {"app": name}}, "spec": {"containers": workload.containers}}
        metadata = {"name": name, "namespace": namespace, "resourceVersion": str(workload.version)}
        spec = {"replicas": workload.replicas, "selector": selector, "template": template}
        return 200, {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata, "spec": spec}

    @staticmethod
    def _scale_object(namespace: str, name: str, replicas: int, version: int) -> dict[str, Any]:
        metadata = {"name": name, "namespace": namespace, "resourceVersion": str(version)}
        status = {"replicas": replicas, "selector": f"app={name}"}
        return {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": metadata,
                "spec": {"replicas": replicas}, "status": status}  # fmt: skip

    def _node(self, name: str, query: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        node = self.state.nodes.get(name)
        if node is None:
            return 404, _status(404, "NotFound", f'nodes "{name}" not found')
        if query.get("dryRun") != "All":
            if "unschedulable" in (body or {}).get("spec", {}):
                node["unschedulable"] = bool(body["spec"]["unschedulable"])
            node.setdefault("annotations", {}).update((body or {}).get("metadata", {}).get("annotations", {}))
        return 200, {"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": name, "annotations": node.get("annotations", {})},
                     "spec": {"unschedulable": node.get("unschedulable", False)}}  # fmt: skip

    def _pods(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        selector = query.get("fieldSelector", "")
        node = selector.split("=", 1)[1] if selector.startswith("spec.nodeName=") else None
        items = [_pod_object(p) for p in self.state.pods if node is None or p.node == node]
        return 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}

    def _evict(self, namespace: str, name: str, body: Any) -> tuple[int, dict[str, Any]]:
        pod = next((p for p in self.state.pods if (p.namespace, p.name) == (namespace, name)), None)
        if pod is None:
            return 404, _status(404, "NotFound", f'pods "{name}" not found')
        if pod.protected:
            refusal = "Cannot evict pod as it would violate the pod's disruption budget."
            return 429, _status(429, "TooManyRequests", refusal)
        dry_run = ((body or {}).get("deleteOptions") or {}).get("dryRun")
        if not dry_run:
            self.state.pods.remove(pod)
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_POST(self) -> None:
        self._handle("POST")


def _pod_object(pod: Pod) -> dict[str, Any]:
    owner = {"apiVersion": "apps/v1", "kind": pod.owner_kind, "name": f"{pod.name}-owner", "uid": "u1",
             "controller": True}  # fmt: skip
    return {"metadata": {"name": pod.name, "namespace": pod.namespace, "ownerReferences": [owner]},
            "spec": {"nodeName": pod.node, "containers": [{"name": "app"}]}}  # fmt: skip


@contextmanager
def kube_server() -> Iterator[tuple[str, KubeState]]:
    """A running server on 127.0.0.1 (a free port) and its state; stopped on exit."""
    state = KubeState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
