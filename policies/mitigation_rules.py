"""The rules around node mitigation: the legacy threshold rule (the baseline and the causal policy's
fallback), the hard-fault overrides, and the cap on nodes out of service at once.

The legacy rule is what fleets run before anything learns from outcomes: look at the worst signal and
escalate with it. In order, first match wins:

1. a hard fault (kind in `HARD_FAULT_KINDS`) or severity `critical` -> `drain_and_repair`;
2. `xid_errors >= 4` or `temperature_c >= 90` -> `drain_and_repair`;
3. `ecc_errors >= 100` or `xid_errors >= 2` -> `reboot`;
4. `ecc_errors >= 20` -> `live_migrate`;
5. otherwise -> `observe`.

When the cap forbids taking the node out, the rule uses `live_migrate` instead. The synthetic generator
logs this rule's choice (plus noise) as the history the causal model learns from: that is the confounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from policies.mitigation_types import (
    ACTIONS,
    HARD_FAULT_KINDS,
    MitigationInput,
    NodeEvent,
    takes_out_of_service,
)
from policies.types import Candidate, Decision, GuardrailEffect, InvalidPolicyInput, register


@dataclass(frozen=True)
class LegacyThresholds:
    """Thresholds of the legacy rule (see the module docstring for the order they are read in)."""

    drain_xid: float = 4.0
    drain_temperature_c: float = 90.0
    reboot_ecc: float = 100.0
    reboot_xid: float = 2.0
    migrate_ecc: float = 20.0


def legacy_action(event: NodeEvent, thresholds: LegacyThresholds | None = None) -> tuple[str, str]:
    """The legacy rule's action for `event` and the reason (which rule fired). Missing signals read as 0."""
    t = thresholds or LegacyThresholds()
    s = event.signals
    ecc, xid, temp = s.get("ecc_errors", 0.0), s.get("xid_errors", 0.0), s.get("temperature_c", 0.0)
    if event.kind in HARD_FAULT_KINDS or event.severity == "critical":
        return "drain_and_repair", f"hard fault: kind={event.kind}, severity={event.severity}"
    if xid >= t.drain_xid:
        return "drain_and_repair", f"xid_errors {xid:g} >= {t.drain_xid:g}"
    if temp >= t.drain_temperature_c:
        return "drain_and_repair", f"temperature_c {temp:g} >= {t.drain_temperature_c:g}"
    if ecc >= t.reboot_ecc:
        return "reboot", f"ecc_errors {ecc:g} >= {t.reboot_ecc:g}"
    if xid >= t.reboot_xid:
        return "reboot", f"xid_errors {xid:g} >= {t.reboot_xid:g}"
    if ecc >= t.migrate_ecc:
        return "live_migrate", f"ecc_errors {ecc:g} >= {t.migrate_ecc:g}"
    return "observe", "no signal over a threshold"


@dataclass(frozen=True)
class HardFaultOverrides:
    """Events no estimate may second-guess: these kinds and severities get the mandated action."""

    kinds: Mapping[str, str] = field(
        default_factory=lambda: dict.fromkeys(HARD_FAULT_KINDS, "drain_and_repair")
    )
    severities: Mapping[str, str] = field(default_factory=lambda: {"critical": "drain_and_repair"})

    def mandated(self, event: NodeEvent) -> tuple[str, str] | None:
        """(action, reason) when `event` is a hard fault, else None. Kind rules win over severity rules."""
        if event.kind in self.kinds:
            return self.kinds[event.kind], f"hard fault kind {event.kind!r} mandates {self.kinds[event.kind]}"
        if event.severity in self.severities:
            action = self.severities[event.severity]
            return action, f"severity {event.severity!r} mandates {action}"
        return None

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any] | None) -> HardFaultOverrides:
        """From `{"kinds": {kind: action}, "severities": {severity: action}}`; None: the defaults."""
        if doc is None:
            return cls()
        kinds, severities = doc.get("kinds", {}), doc.get("severities", {})
        if not isinstance(kinds, Mapping) or not isinstance(severities, Mapping):
            raise InvalidPolicyInput(
                "overrides.kinds and overrides.severities map a kind/severity to an action"
            )
        return cls(dict(kinds), dict(severities))

    def to_mapping(self) -> dict[str, dict[str, str]]:
        return {"kinds": dict(self.kinds), "severities": dict(self.severities)}


def cap_guardrail(
    inputs: MitigationInput, action: str, alternative: str, why: str = ""
) -> tuple[str, GuardrailEffect | None]:
    """Apply the out-of-service cap: if `action` takes the node out and the cap is reached, use
    `alternative` (an in-service action) and say so; otherwise keep `action`."""
    if not takes_out_of_service(action) or not inputs.cap_reached:
        return action, None
    reason = (
        f"{inputs.nodes_out_of_service} nodes already out of service (max {inputs.max_out_of_service}); "
        f"{action} would take {inputs.node} out too, so {alternative}{why}"
    )
    return alternative, GuardrailEffect("out_of_service_cap", action, alternative, reason)


@register("mitigation_legacy", "mitigation")
class LegacyMitigationRule:
    """The legacy mitigation rule as a policy (the baseline): thresholds on signals, then the cap."""

    def __init__(
        self, thresholds: LegacyThresholds | None = None, in_service_action: str = "live_migrate"
    ) -> None:
        if takes_out_of_service(in_service_action):
            raise InvalidPolicyInput(
                f"in_service_action must keep the node in service; {in_service_action!r} does not "
                f"(in-service actions: {[a.name for a in ACTIONS if not a.out_of_service]})"
            )
        self.thresholds = thresholds or LegacyThresholds()
        self.in_service_action = in_service_action

    def action_for(self, event: NodeEvent) -> tuple[str, str]:
        """The rule's action for `event` (before the cap) and which rule fired."""
        return legacy_action(event, self.thresholds)

    def decide(self, inputs: MitigationInput) -> Decision:
        if not isinstance(inputs, MitigationInput):
            raise InvalidPolicyInput(f"mitigation_legacy decides on a MitigationInput, got {type(inputs)}")
        wanted, rule = self.action_for(inputs.event)
        action, effect = cap_guardrail(inputs, wanted, self.in_service_action)
        if effect is not None and HardFaultOverrides().mandated(inputs.event) is not None:
            action, effect = wanted, None  # a hard-faulted node is out of service whatever we do
        note = f"legacy rule: {rule}"
        return Decision(
            kind="mitigation",
            target=inputs.node,
            action=action,
            params={"takes_out_of_service": takes_out_of_service(action)},
            policy=self.name,  # type: ignore[attr-defined]
            candidates=[Candidate(action, {}, float("nan"), 0.0, True, note)],
            guardrails=[effect] if effect else [],
            details={"rule": rule, "rule_action": wanted, "thresholds": asdict(self.thresholds)},
        )
