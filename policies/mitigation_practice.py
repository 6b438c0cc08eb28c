"""The fallback of causal mitigation: the fleet's own practice, or a rule its users declare.

Learned practice is the logged-action model's most probable action for the event ("what your operators
would do"), fitted by `MitigationModel`. A declared rule is the user's own thresholds over their own signal
names: clauses read in order, the first whose conditions all hold gives the action, else `default`.
A key names a signal, or `context.<name>` a context value; a missing value never satisfies a condition.

    {"clauses": [{"when": [{"signal": "ecc_count", "op": ">=", "value": 100}], "action": "reboot"}],
     "default": "observe"}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.mitigation_types import NodeEvent
from policies.types import InvalidPolicyInput

OPS = (">=", ">", "<=", "<", "==", "!=")


@dataclass(frozen=True)
class Condition:
    signal: str
    op: str
    value: float | str

    def __post_init__(self) -> None:
        if not self.signal:
            raise InvalidPolicyInput("a rule condition needs a signal name")
        if self.op not in OPS:
            raise InvalidPolicyInput(f"rule op must be one of {OPS}, got {self.op!r}")
        if isinstance(self.value, str) and self.op not in ("==", "!="):
            raise InvalidPolicyInput(f"a label value ({self.value!r}) compares with == or != only")

    def value_in(self, event: NodeEvent) -> float | str | None:
        if self.signal.startswith("context."):
            return event.context.get(self.signal.removeprefix("context."))
        return event.signals.get(self.signal)

    def holds(self, event: NodeEvent) -> bool:
        seen = self.value_in(event)
        if seen is None:
            return False
        if self.op in ("==", "!="):
            same = str(seen) == str(self.value) if isinstance(self.value, str) else seen == self.value
            return same if self.op == "==" else not same
        if isinstance(seen, str) or isinstance(self.value, str):
            return False
        a, b = float(seen), float(self.value)
        return {">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b}[self.op]

    def text(self) -> str:
        return (
            f"{self.signal} {self.op} {self.value:g}"
            if not isinstance(self.value, str)
            else (f"{self.signal} {self.op} {self.value}")
        )


@dataclass(frozen=True)
class Clause:
    when: tuple[Condition, ...]
    action: str


@dataclass(frozen=True)
class DeclaredRule:
    """A user's thresholds -> action rule over their own signal names (see the module docstring)."""

    clauses: tuple[Clause, ...]
    default: str

    def __post_init__(self) -> None:
        if not self.default:
            raise InvalidPolicyInput("a declared rule needs a default action")

    @property
    def actions(self) -> set[str]:
        return {c.action for c in self.clauses} | {self.default}

    @property
    def signals(self) -> set[str]:
        return {w.signal for c in self.clauses for w in c.when}

    def action_for(self, event: NodeEvent) -> tuple[str, str]:
        """The rule's action and which clause fired."""
        for i, clause in enumerate(self.clauses):
            if all(w.holds(event) for w in clause.when):
                cond = " and ".join(w.text() for w in clause.when) or "always"
                return clause.action, f"declared rule clause {i + 1}: {cond} -> {clause.action}"
        return self.default, f"declared rule: no clause matched -> default {self.default}"

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any]) -> DeclaredRule:
        try:
            clauses = tuple(
                Clause(
                    tuple(Condition(str(w["signal"]), str(w.get("op", ">=")), w["value"]) for w in c["when"]),
                    str(c["action"]),
                )
                for c in doc.get("clauses", [])
            )
            return cls(clauses, str(doc["default"]))
        except (KeyError, TypeError) as exc:
            raise InvalidPolicyInput(f"declared rule is malformed: missing {exc}") from None

    def to_mapping(self) -> dict[str, Any]:
        return {
            "clauses": [
                {
                    "when": [{"signal": w.signal, "op": w.op, "value": w.value} for w in c.when],
                    "action": c.action,
                }
                for c in self.clauses
            ],
            "default": self.default,
        }
