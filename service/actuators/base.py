"""The one interface every actuator implements, and the shapes that cross it.

The control loop (and an operator's `apply`) hands an actuator an `ActuationRequest` — one decision's
action on one target — and gets an `ActuationResult` back. An actuator never raises for a refusal, a
conflict or a timeout: the result says what happened (`status`) and whether trying again later is safe
(`retryable`), so the caller records it and the loop never crashes. Requests carry the decision id as the
idempotency key: applying the same decision twice changes the cluster once.

Targets are named as Kubernetes names them: a workload is `namespace/kind/name` (`kind` Deployment or
StatefulSet, as in an HPA's `scaleTargetRef`), a node is its node name, a power domain its own name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ActuationStatus = Literal["applied", "dry_run", "refused", "retry_later", "failed", "skipped"]
"""applied: the cluster accepted the change; dry_run: the server validated it without persisting it
(approve mode); refused: the cluster said no for good (missing target, forbidden, invalid); retry_later:
a transient no (409 conflict retries exhausted, 429 PodDisruptionBudget, 5xx, timeout); failed: an error
on our side or an unknown answer; skipped: nothing to do (e.g. the `none` actuator, or already in place)."""


@dataclass(frozen=True)
class ScaleTarget:
    """A scalable workload as Kubernetes names it (`scaleTargetRef`)."""

    namespace: str
    kind: str
    """`Deployment` or `StatefulSet` (also accepted lowercase / plural: `deployments`)."""
    name: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"

    @classmethod
    def parse(cls, ref: str) -> ScaleTarget:
        """`namespace/kind/name`; raises ValueError naming the expected form."""
        parts = ref.split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"target {ref!r} must be namespace/kind/name, e.g. default/Deployment/web")
        return cls(*parts)


@dataclass(frozen=True)
class ActuationRequest:
    decision_id: int
    kind: str
    """The decision kind: `scaling`, `mitigation`, `power` (others are refused as unsupported)."""
    action: str
    """The decision's action, e.g. `scale_out`, `drain_and_repair`, `cap`."""
    target: str
    """`namespace/kind/name` for scaling, the node name for mitigation, the domain name for power."""
    params: dict[str, Any]
    """The decision's params: `replicas` (scaling), the action (mitigation), per-server limits (power)."""
    dry_run: bool = False
    """Validate without changing anything (server-side dry-run for Kubernetes; the webhook says so)."""


@dataclass(frozen=True)
class ActuationResult:
    status: ActuationStatus
    detail: str
    """One human line: what was done or why not."""
    retryable: bool = False
    attempts: int = 1
    observed: dict[str, Any] = field(default_factory=dict)
    """What the cluster reported back, e.g. `{"replicas": 5, "resource_version": "812"}`."""

    @property
    def ok(self) -> bool:
        return self.status in ("applied", "dry_run", "skipped")


class Actuator(Protocol):
    """Carries decisions to a cluster; `name` is how targets choose it (`kubernetes`, `webhook`, `none`)."""

    name: str

    def apply(self, request: ActuationRequest) -> ActuationResult: ...

    def current_replicas(self, target: ScaleTarget) -> int | None:
        """The workload's replicas as the cluster reports them now (None when it cannot say)."""
        ...
