"""The one contract every policy follows: typed inputs in, a `Decision` carrying its evidence out.

A Decision says what to do (`action` + `params`) and why: the forecast quantiles the policy read, the
candidates it weighed with their expected cost and risk, the guardrails that changed the answer, and the
reason it fell back to a conservative baseline when it did (docs/architecture.md §6.5). Policies are pure: no
web, no database; the service turns a Decision into a `decisions` row and the replay simulator applies it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

DECISION_KINDS = ("scaling", "rightsizing", "power", "oversubscription", "energy", "mitigation")
"""What a Decision can be about; `kind` of every Decision is one of these."""


class PolicyError(Exception):
    """Base of the errors policies raise; `code` lets a caller map it (e.g. to HTTP 422)."""

    code = "policy_error"


class InvalidPolicyInput(PolicyError, ValueError):
    """An input cannot be decided on (says which field and why)."""

    code = "invalid_policy_input"


class InvalidPolicyConfig(PolicyError, ValueError):
    """A policy was configured with a parameter it does not take."""

    code = "invalid_policy_config"


class UnknownPolicyError(PolicyError, KeyError):
    """No policy is registered under the requested name."""

    code = "unknown_policy"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Candidate:
    """One option a policy weighed: the action, its expected cost and its risk (probability of harm)."""

    action: str
    params: dict[str, Any]
    expected_cost: float
    risk: float
    feasible: bool = True
    note: str = ""


@dataclass(frozen=True)
class GuardrailEffect:
    """A guardrail that changed the answer: what the policy wanted, what it got, and why."""

    name: str
    before: Any
    after: Any
    reason: str


@dataclass
class Decision:
    """What a policy recommends and the evidence behind it."""

    kind: str
    target: str
    action: str
    params: dict[str, Any]
    policy: str
    forecast: dict[str, Any] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)
    guardrails: list[GuardrailEffect] = field(default_factory=list)
    fallback_reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in DECISION_KINDS:
            raise InvalidPolicyInput(f"decision kind {self.kind!r} is not one of {DECISION_KINDS}")

    @property
    def fell_back(self) -> bool:
        return self.fallback_reason is not None

    def explanation(self) -> dict[str, Any]:
        """The evidence as plain JSON (numbers finite or None), as stored in `decisions.explanation`."""
        return jsonable(
            {
                "policy": self.policy,
                "forecast": self.forecast,
                "candidates": [asdict(c) for c in self.candidates],
                "guardrails": [asdict(g) for g in self.guardrails],
                "fallback_reason": self.fallback_reason,
                "details": self.details,
            }
        )


def jsonable(value: Any) -> Any:
    """Turn numpy scalars/arrays, tuples and non-finite floats into plain JSON values (inf/nan -> None)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        number = float(value)
        return number if math.isfinite(number) else None
    return value


class BasePolicy:
    """Base of policy classes: `register` fills in `name` and `kind`."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""


class Policy(Protocol):
    """A policy: configured in its constructor, `decide(inputs)` returns a Decision (never raises for a
    modelling problem: it falls back and says so)."""

    name: ClassVar[str]
    kind: ClassVar[str]

    def decide(self, inputs: Any) -> Decision: ...


PolicyClass = TypeVar("PolicyClass", bound=type)
_REGISTRY: dict[str, type] = {}


def register(name: str, kind: str) -> Callable[[PolicyClass], PolicyClass]:
    """Class decorator: a policy available by name (`build_policy`) and to the conformance suite."""
    if kind not in DECISION_KINDS:
        raise ValueError(f"unknown decision kind {kind!r}")

    def wrap(cls: PolicyClass) -> PolicyClass:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"policy name {name!r} is registered twice")
        setattr(cls, "name", name)  # noqa: B010 - the decorator is what sets them
        setattr(cls, "kind", kind)  # noqa: B010
        _REGISTRY[name] = cls
        return cls

    return wrap


def registered_policies(kind: str | None = None) -> dict[str, type]:
    """Registered policy classes by name, optionally only those of one kind."""
    return {n: c for n, c in sorted(_REGISTRY.items()) if kind is None or getattr(c, "kind", None) == kind}


def build_policy(name: str, **config: Any) -> Any:
    """Instantiate a registered policy by name with its configuration."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownPolicyError(f"no policy named {name!r}; known policies: {known}") from None
    try:
        return cls(**config)
    except TypeError as error:  # an unknown or missing keyword: the configuration's fault, say which
        raise InvalidPolicyConfig(f"policy {name!r}: {error}") from None
