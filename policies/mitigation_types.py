"""Node-mitigation vocabulary: the actions, an unhealthy-node event, its logged outcome, the policy input.

`NodeEventRecord` mirrors one `node_events` row (kind, severity, signals JSON, context JSON, action_taken,
downtime_minutes); `NodeEvent` is the same event before anything was done about it, which is what a
policy decides on. Whether an action takes the node out of service is a property of the action (the
out-of-service cap reads it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policies.types import InvalidPolicyInput

if TYPE_CHECKING:
    from policies.mitigation_model import MitigationModel
    from policies.mitigation_practice import DeclaredRule
    from policies.mitigation_rules import HardFaultOverrides


@dataclass(frozen=True)
class MitigationAction:
    """One thing that can be done about an unhealthy node; `out_of_service` if the node stops serving."""

    name: str
    out_of_service: bool
    description: str


ACTIONS: tuple[MitigationAction, ...] = (
    MitigationAction("observe", False, "no action: keep the node in service and watch it"),
    MitigationAction("live_migrate", False, "move the VMs to healthy nodes; the node stays schedulable"),
    MitigationAction(
        "reboot", True, "reboot the node (clears soft faults); out of service while it restarts"
    ),
    MitigationAction("drain_and_repair", True, "drain the node and send it to repair; out of service"),
)
"""The default action set; `observe` (the first) is the reference the causal effects are measured from."""

ACTIONS_BY_NAME: dict[str, MitigationAction] = {a.name: a for a in ACTIONS}
REFERENCE_ACTION = "observe"
HARD_FAULT_KINDS: tuple[str, ...] = ("gpu_fell_off_bus", "disk_failure")
"""Event kinds that are hard faults: no estimate is consulted, the override rule mandates the action."""
SEVERITIES = ("warning", "error", "critical")


def takes_out_of_service(action: str) -> bool:
    """Whether `action` removes the node from service (unknown actions are assumed to: the safe side)."""
    known = ACTIONS_BY_NAME.get(action)
    return True if known is None else known.out_of_service


def _mapping(value: Any, name: str) -> dict[str, Any]:
    """A JSON object given as a mapping or a JSON string (as a database row may hold it)."""
    if value is None:
        return {}
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidPolicyInput(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, Mapping):
        raise InvalidPolicyInput(f"{name} must be a JSON object, got {type(value).__name__}")
    return dict(value)


def _check_signals(signals: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in signals.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidPolicyInput(f"signal {key!r} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise InvalidPolicyInput(f"signal {key!r} must be finite, got {value!r}")
        out[str(key)] = float(value)
    return out


def _check_context(context: Mapping[str, Any]) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for key, value in context.items():
        if isinstance(value, str):
            out[str(key)] = value
        elif isinstance(value, bool | int | float) and math.isfinite(float(value)):
            out[str(key)] = float(value)
        else:
            raise InvalidPolicyInput(f"context {key!r} must be a finite number or a string, got {value!r}")
    return out


@dataclass(frozen=True)
class NodeEvent:
    """An unhealthy-node event as a policy sees it: numeric signals, context (numbers or labels), kind,
    severity. Validated on construction (finite numbers, non-empty kind)."""

    signals: dict[str, float]
    context: dict[str, float | str]
    kind: str
    severity: str = "warning"

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise InvalidPolicyInput("event kind must be a non-empty string (e.g. 'ecc_errors')")
        if not isinstance(self.severity, str) or not self.severity:
            raise InvalidPolicyInput(f"event severity must be one of {SEVERITIES}, got {self.severity!r}")
        object.__setattr__(self, "signals", _check_signals(_mapping(self.signals, "signals")))
        object.__setattr__(self, "context", _check_context(_mapping(self.context, "context")))


@dataclass(frozen=True)
class NodeEventRecord(NodeEvent):
    """A past event with what the legacy rule did (`action`) and the downtime that followed (minutes);
    either is None while unknown, and such records are skipped when fitting."""

    action: str | None = None
    downtime_minutes: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.downtime_minutes is not None:
            minutes = float(self.downtime_minutes)
            if not math.isfinite(minutes) or minutes < 0:
                raise InvalidPolicyInput(f"downtime_minutes must be finite and >= 0, got {minutes!r}")
            object.__setattr__(self, "downtime_minutes", minutes)

    @property
    def event(self) -> NodeEvent:
        """The event without its outcome."""
        return NodeEvent(dict(self.signals), dict(self.context), self.kind, self.severity)

    @property
    def has_outcome(self) -> bool:
        return self.action is not None and self.downtime_minutes is not None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> NodeEventRecord:
        """From a `node_events` row as a mapping: kind, severity, signals, context (dicts or JSON strings),
        action_taken, downtime_minutes. Other keys (node_id, ts, ...) are ignored."""
        downtime = row.get("downtime_minutes")
        return cls(
            signals=_mapping(row.get("signals"), "signals"),
            context=_mapping(row.get("context"), "context"),
            kind=str(row.get("kind") or ""),
            severity=str(row.get("severity") or "warning"),
            action=row.get("action_taken") or row.get("action"),
            downtime_minutes=None if downtime is None else float(downtime),
        )


@dataclass(frozen=True)
class MitigationInput:
    """What a mitigation policy decides on: the node, its event, how many nodes are out of service now
    (not counting this one) and the most allowed at once, and optionally the fitted causal model (the
    service loads it from `models`; the policy's own `model` is used when this is None), the user's
    declared fallback rule and hard-fault overrides (None: the policy's own)."""

    node: str
    event: NodeEvent
    nodes_out_of_service: int = 0
    max_out_of_service: int = 1
    model: MitigationModel | None = field(default=None, compare=False)
    rule: DeclaredRule | None = field(default=None, compare=False)
    overrides: HardFaultOverrides | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.node, str) or not self.node:
            raise InvalidPolicyInput("node must be a non-empty node id")
        if not isinstance(self.event, NodeEvent):
            raise InvalidPolicyInput(f"event must be a NodeEvent, got {type(self.event).__name__}")
        for name in ("nodes_out_of_service", "max_out_of_service"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidPolicyInput(f"{name} must be an integer >= 0, got {value!r}")

    @classmethod
    def from_row(
        cls,
        row: Mapping[str, Any],
        nodes_out_of_service: int,
        max_out_of_service: int,
        model: MitigationModel | None = None,
    ) -> MitigationInput:
        """From a `node_events` row (node_id, kind, severity, signals, context) and the fleet's state."""
        event = NodeEventRecord.from_row(row).event
        return cls(str(row.get("node_id") or ""), event, nodes_out_of_service, max_out_of_service, model)

    @property
    def cap_reached(self) -> bool:
        """True when taking this node out would exceed the out-of-service cap."""
        return self.nodes_out_of_service >= self.max_out_of_service
