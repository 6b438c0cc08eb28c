"""The `kubernetes` actuator: the official Python client against the cluster's API server.

* Scaling: PATCH the `scale` subresource of a Deployment or StatefulSet with the `resourceVersion` just
  read (optimistic concurrency: a concurrent writer makes the server answer 409, and we read again and
  retry, a bounded number of times). Approve mode sends the same request with `dryRun=All`, so the
  server validates it (admission included) without persisting it.
* Mitigation: every action but `observe` cordons the node (`spec.unschedulable`); `drain_and_repair`,
  `live_migrate` and `reboot` then evict its pods through the Eviction API, which honours
  PodDisruptionBudgets: a 429 means "not now" and the decision is retried later, never forced. DaemonSet
  and mirror pods stay (as `kubectl drain --ignore-daemonsets` does). `reboot` and `drain_and_repair`
  also annotate the node with the requested action for a node agent (kured-style) to carry out.
* Right-sizing: PATCH the pod template's container requests (cpu in millicores, memory in bytes), with
  the same `resourceVersion` precondition: a rollout, as VPA's `Recreate` mode causes. A workload with
  several containers is refused (usage is measured per pod).
* Power caps are not Kubernetes objects: they go through the `webhook` actuator (docs/actuation.md).

The actuator never raises for the cluster's answers: 404/403/422 are `refused`, 409 after the retries,
429, 5xx and timeouts are `retry_later`. Configuration: `FORESIGHT_KUBE_API_URL` (+ `_TOKEN`,
`_VERIFY_TLS`, `_CA_FILE`) or, when it is empty, the in-cluster service account, else `~/.kube/config`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from service.actuators.base import ActuationRequest, ActuationResult, ActuationStatus, ScaleTarget
from service.config import Settings

SCALABLE = {"deployment": "deployment", "deployments": "deployment", "statefulset": "stateful_set",
            "statefulsets": "stateful_set"}  # fmt: skip
DRAINING_ACTIONS = {"drain_and_repair", "live_migrate", "reboot"}
AGENT_ACTIONS = {"drain_and_repair", "reboot"}
ACTION_ANNOTATION = "foresight.io/requested-action"
DECISION_ANNOTATION = "foresight.io/decision-id"


def api_client(settings: Settings) -> client.ApiClient:
    """A client for the configured API server (explicit URL, in-cluster, or the local kubeconfig)."""
    if settings.kube_api_url:
        configuration = client.Configuration()
        configuration.host = settings.kube_api_url.rstrip("/")
        configuration.verify_ssl = settings.kube_verify_tls
        if settings.kube_ca_file:
            configuration.ssl_ca_cert = settings.kube_ca_file
        if settings.kube_token:
            configuration.api_key = {"authorization": settings.kube_token}
            configuration.api_key_prefix = {"authorization": "Bearer"}
        configuration.retries = False
        return client.ApiClient(configuration)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


class KubernetesActuator:
    """Scale subresource patches, cordons and evictions through the official client."""

    name = "kubernetes"

    def __init__(self, settings: Settings, api: client.ApiClient | None = None) -> None:
        self.settings = settings
        self.api = api or api_client(settings)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.timeout = settings.kube_timeout_seconds

    def apply(self, request: ActuationRequest) -> ActuationResult:
        try:
            if request.kind == "scaling":
                return self._scale(request)
            if request.kind == "rightsizing":
                return self._resize(request)
            if request.kind == "mitigation":
                return self._mitigate(request)
            return ActuationResult(
                "refused", f"the kubernetes actuator does not carry {request.kind} decisions: "
                "power caps go through the webhook actuator (docs/actuation.md)",
            )  # fmt: skip
        except ApiException as error:
            return _from_api_error(error, attempts=1)
        except (Urllib3Error, OSError) as error:
            return ActuationResult("retry_later", f"API server unreachable: {error}", retryable=True)
        except ValueError as error:
            return ActuationResult("refused", str(error))

    def current_replicas(self, target: ScaleTarget) -> int | None:
        try:
            scale = self._read_scale(target)
        except (ApiException, Urllib3Error, OSError, ValueError):
            return None
        replicas = scale.status.replicas if scale.status is not None else None
        return int(replicas) if replicas is not None else None

    # -- scaling -----------------------------------------------------------------------------------

    def _scale(self, request: ActuationRequest) -> ActuationResult:
        target = ScaleTarget.parse(request.target)
        wanted = request.params.get("replicas")
        if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 0:
            return ActuationResult("refused", f"decision params carry no replica count: {wanted!r}")
        retries = self.settings.kube_conflict_retries
        for attempt in range(1, retries + 2):
            scale = self._read_scale(target)
            version = scale.metadata.resource_version
            before = scale.spec.replicas if scale.spec is not None else None
            if before == wanted and not request.dry_run:
                return ActuationResult(
                    "skipped", f"{target.ref} already has {wanted} replicas", attempts=attempt,
                    observed={"replicas": wanted, "resource_version": version},
                )  # fmt: skip
            body = {"metadata": {"resourceVersion": version}, "spec": {"replicas": wanted}}
            try:
                patched = self._patch_scale(target, body, request.dry_run)
            except ApiException as error:
                if error.status == 409 and attempt <= retries:
                    continue  # someone wrote in between: read the new version and try again
                return _from_api_error(error, attempts=attempt)
            observed = {"replicas": patched.spec.replicas, "previous_replicas": before,
                        "resource_version": patched.metadata.resource_version}  # fmt: skip
            if request.dry_run:
                return ActuationResult(
                    "dry_run", f"server-side dry run: {target.ref} {before} → {wanted} replicas accepted",
                    attempts=attempt, observed=observed,
                )  # fmt: skip
            return ActuationResult(
                "applied", f"{target.ref} scaled {before} → {wanted} replicas", attempts=attempt,
                observed=observed,
            )  # fmt: skip
        raise AssertionError("unreachable: the loop returns on its last attempt")

    def _read_scale(self, target: ScaleTarget) -> Any:
        kind = _scalable(target.kind)
        read = getattr(self.apps, f"read_namespaced_{kind}_scale")
        return read(target.name, target.namespace, _request_timeout=self.timeout)

    def _patch_scale(self, target: ScaleTarget, body: dict[str, Any], dry_run: bool) -> Any:
        patch = getattr(self.apps, f"patch_namespaced_{_scalable(target.kind)}_scale")
        extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        return patch(target.name, target.namespace, body, _request_timeout=self.timeout, **extra)

    # -- right-sizing ------------------------------------------------------------------------------

    def _resize(self, request: ActuationRequest) -> ActuationResult:
        """Set the container's requests in the pod template (a rollout, as VPA's Recreate mode does)."""
        if request.action == "hold":
            return ActuationResult("skipped", "right-sizing holds the current requests")
        target = ScaleTarget.parse(request.target)
        wanted = _requests(request.params)
        if not wanted:
            return ActuationResult("refused", "the decision carries no new cpu or memory request")
        kind = _scalable(target.kind)
        read = getattr(self.apps, f"read_namespaced_{kind}")
        patch = getattr(self.apps, f"patch_namespaced_{kind}")
        extra: dict[str, Any] = {"dry_run": "All"} if request.dry_run else {}
        for attempt in range(1, self.settings.kube_conflict_retries + 2):
            current = read(target.name, target.namespace, _request_timeout=self.timeout)
            containers = current.spec.template.spec.containers
            if len(containers) != 1:
                return ActuationResult(
                    "refused", f"{target.ref} has {len(containers)} containers; usage is measured per pod, "
                    "so set per-container requests yourself (or through VPA)",
                )  # fmt: skip
            body = {"metadata": {"resourceVersion": current.metadata.resource_version},
                    "spec": {"template": {"spec": {"containers": [
                        {"name": containers[0].name, "resources": {"requests": wanted}}]}}}}  # fmt: skip
            try:
                patch(target.name, target.namespace, body, _request_timeout=self.timeout, **extra)
            except ApiException as error:
                if error.status == 409 and attempt <= self.settings.kube_conflict_retries:
                    continue
                return _from_api_error(error, attempts=attempt)
            detail = f"{target.ref} container {containers[0].name} requests set to {wanted}"
            status: ActuationStatus = "dry_run" if request.dry_run else "applied"
            return ActuationResult(status, detail, attempts=attempt, observed={"requests": wanted})
        raise AssertionError("unreachable: the loop returns on its last attempt")

    # -- mitigation --------------------------------------------------------------------------------

    def _mitigate(self, request: ActuationRequest) -> ActuationResult:
        action = str(request.params.get("action") or request.action)
        node = request.target
        if action == "observe":
            return ActuationResult("skipped", f"observe: {node} stays in service")
        extra: dict[str, Any] = {"dry_run": "All"} if request.dry_run else {}
        annotations = {DECISION_ANNOTATION: str(request.decision_id)}
        if action in AGENT_ACTIONS:
            annotations[ACTION_ANNOTATION] = action
        body = {"spec": {"unschedulable": True}, "metadata": {"annotations": annotations}}
        self.core.patch_node(node, body, _request_timeout=self.timeout, **extra)
        if action not in DRAINING_ACTIONS:
            return ActuationResult(
                "dry_run" if request.dry_run else "applied", f"{node} cordoned ({action})",
                observed={"cordoned": True},
            )  # fmt: skip
        return self._drain(node, action, request.dry_run)

    def _drain(self, node: str, action: str, dry_run: bool) -> ActuationResult:
        pods = self.core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={node}", _request_timeout=self.timeout
        )
        evicted: list[str] = []
        blocked: list[str] = []
        for pod in pods.items:
            if _stays_on_node(pod) or pod.metadata is None:
                continue
            name, namespace = str(pod.metadata.name), str(pod.metadata.namespace)
            ref = f"{namespace}/{name}"
            eviction = client.V1Eviction(
                metadata=client.V1ObjectMeta(name=name, namespace=namespace),
                delete_options=client.V1DeleteOptions(dry_run=["All"] if dry_run else None),
            )
            try:
                self.core.create_namespaced_pod_eviction(
                    name, namespace, eviction, _request_timeout=self.timeout
                )
                evicted.append(ref)
            except ApiException as error:
                if error.status == 404:
                    continue  # already gone
                if error.status == 429:
                    blocked.append(ref)  # a PodDisruptionBudget says not now
                    continue
                raise
        observed = {"cordoned": True, "evicted": evicted, "blocked_by_pdb": blocked}
        if blocked:
            return ActuationResult(
                "retry_later", f"{node} cordoned; {len(evicted)} pods evicted, {len(blocked)} held by a "
                f"PodDisruptionBudget (429): {', '.join(blocked[:5])}", retryable=True, observed=observed,
            )  # fmt: skip
        return ActuationResult(
            "dry_run" if dry_run else "applied",
            f"{node} cordoned and drained for {action}: {len(evicted)} pods evicted", observed=observed,
        )  # fmt: skip


def _requests(params: dict[str, Any]) -> dict[str, str]:
    """Kubernetes quantities of the decision's requests: cores as millicores, bytes as bytes."""
    out: dict[str, str] = {}
    cpu = (params.get("cpu") or {}).get("request")
    memory = (params.get("memory") or {}).get("request")
    if isinstance(cpu, int | float) and cpu > 0:
        out["cpu"] = f"{math.ceil(cpu * 1000)}m"
    if isinstance(memory, int | float) and memory > 0:
        out["memory"] = str(math.ceil(memory))
    return out


def _scalable(kind: str) -> str:
    found = SCALABLE.get(kind.lower())
    if found is None:
        raise ValueError(f"kind {kind!r} has no scale subresource here; use Deployment or StatefulSet")
    return found


def _stays_on_node(pod: Any) -> bool:
    """DaemonSet pods would come straight back and mirror pods cannot be evicted: drain leaves both."""
    annotations = pod.metadata.annotations or {}
    if "kubernetes.io/config.mirror" in annotations:
        return True
    return any(owner.kind == "DaemonSet" for owner in pod.metadata.owner_references or [])


def _from_api_error(error: ApiException, attempts: int) -> ActuationResult:
    status = int(error.status or 0)
    reason = _message(error)
    if status == 409:
        return ActuationResult(
            "retry_later", f"409 conflict after {attempts} attempts: {reason}", retryable=True,
            attempts=attempts,
        )  # fmt: skip
    if status == 429 or status >= 500 or status == 0:
        return ActuationResult(
            "retry_later", f"{status or 'no answer'}: {reason}", retryable=True, attempts=attempts
        )
    return ActuationResult("refused", f"{status}: {reason}", attempts=attempts)


def _message(error: ApiException) -> str:
    """The Status object's message when the server sent one, else the HTTP reason."""
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)[:300]
    except (ValueError, AttributeError):
        return str(error.reason)[:300]
