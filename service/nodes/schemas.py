"""API shapes of unhealthy-node events, mitigation requests and mitigation-model training."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policies.mitigation_learners import LEARNERS
from service.names import Name, Number, ShortName, name_problem

MAX_SIGNALS = 256
"""Signals (and context entries) one event may carry: far more than any detector reports."""
MAX_BULK_EVENTS = 10_000
"""Events one bulk import may carry (looked up and inserted in bulk, all or nothing)."""


class NodeEventBody(BaseModel):
    """One unhealthy-node signal: numeric signals, context (numbers or labels), and — for history — the
    action that was taken and the downtime that followed."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ts: str | Number | None = Field(
        default=None, description="Epoch seconds or RFC 3339, from 1970 on; default: now"
    )
    kind: str = Field(
        min_length=1, max_length=64, description="e.g. ecc_errors, gpu_fell_off_bus, disk_failure"
    )
    severity: str = Field(default="warning", pattern="^(warning|error|critical)$")
    signals: dict[Name, Number] = Field(
        default_factory=dict, max_length=MAX_SIGNALS, description="Numeric signals, e.g. error counts"
    )
    context: dict[Name, Number | str] = Field(
        default_factory=dict, max_length=MAX_SIGNALS, description="e.g. hardware age, workload type"
    )
    action_taken: str | None = Field(
        default=None,
        max_length=64,
        description="The action the operators took, named as the fleet names it (e.g. reboot, drain)",
    )
    downtime_minutes: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @field_validator("kind")
    @classmethod
    def _printable_kind(cls, value: str) -> str:
        if problem := name_problem(value, max_length=64):
            raise ValueError(problem)
        return value

    @field_validator("action_taken")
    @classmethod
    def _printable_action(cls, value: str | None) -> str | None:
        """Fleets name their own actions (issue 15); the name still follows the name policy."""
        if value is not None and (problem := name_problem(value, max_length=64)):
            raise ValueError(problem)
        return value

    @field_validator("context")
    @classmethod
    def _printable_context(cls, value: dict[str, float | str]) -> dict[str, float | str]:
        for key, item in value.items():
            if isinstance(item, str) and (problem := name_problem(item, allow_empty=True)):
                raise ValueError(f"{key}: {problem}")
        return value


class NodeEventIn(NodeEventBody):
    cluster: Name


class BulkNodeEvent(NodeEventIn):
    node: Name


class BulkNodeEvents(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    events: list[BulkNodeEvent] = Field(min_length=1, max_length=MAX_BULK_EVENTS)


class NodeEventOut(BaseModel):
    id: int
    node: str
    cluster: str
    ts: datetime
    kind: str
    severity: str
    signals: dict[str, Any]
    context: dict[str, Any]
    action_taken: str | None
    downtime_minutes: float | None
    resolved_at: datetime | None


class BulkResult(BaseModel):
    created: int
    duplicates: int


class MitigationRequest(BaseModel):
    """Ask what to do about a node: name a stored event (`event_id`) or send the event itself."""

    model_config = ConfigDict(extra="forbid", strict=True)

    node: Name
    cluster: Name | None = None
    event_id: int | None = Field(default=None, ge=1, le=2**62)
    event: NodeEventBody | None = None
    policy: ShortName = "mitigation_causal"

    @model_validator(mode="after")
    def _one_event(self) -> MitigationRequest:
        if (self.event_id is None) == (self.event is None):
            raise ValueError("give exactly one of event_id (a stored event) or event (a new one)")
        return self


LearnerName = Literal["t_learner", "x_learner", "dr_learner", "causal_forest"]
DEFAULT_LEARNERS: tuple[LearnerName, ...] = ("t_learner", "x_learner", "dr_learner", "causal_forest")
if set(DEFAULT_LEARNERS) != set(LEARNERS):  # the policy's list is the one home; this names it for the API
    raise RuntimeError(f"MitigationTrainRequest's learners {DEFAULT_LEARNERS} differ from {tuple(LEARNERS)}")


class MitigationTrainRequest(BaseModel):
    """Fit on every stored event with a known action and downtime. The learners are compared and the
    strictness chosen by doubly-robust off-policy evaluation on held-out history."""

    model_config = ConfigDict(extra="forbid", strict=True)

    n_estimators: int = Field(default=48, ge=4, le=2000, multiple_of=4, description="Causal-forest trees")
    nuisance_estimators: int = Field(default=80, ge=10, le=2000, description="LightGBM trees per model")
    learners: list[LearnerName] = Field(
        default_factory=lambda: list(DEFAULT_LEARNERS), min_length=1, description="Estimators to compare"
    )
    folds: int = Field(default=3, ge=2, le=10, description="Cross-fitting folds")
    min_events: int = Field(default=200, ge=20, le=10_000_000)
    min_per_action: int = Field(default=20, ge=5, le=100_000)
    seed: int = Field(default=0, ge=0)


class RuleCondition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signal: str = Field(min_length=1, max_length=200, description="A signal name, or context.<name>")
    op: Literal[">=", ">", "<=", "<", "==", "!="] = ">="
    value: float | str = Field(description="A number (or a label, with == / !=)")


class RuleClause(BaseModel):
    model_config = ConfigDict(extra="forbid")

    when: list[RuleCondition] = Field(min_length=1, max_length=20, description="All must hold")
    action: str = Field(min_length=1, max_length=64)


class OverridesIn(BaseModel):
    """Hard faults no estimate may second-guess: event kind -> action, severity -> action."""

    model_config = ConfigDict(extra="forbid")

    kinds: dict[str, str] = Field(default_factory=dict)
    severities: dict[str, str] = Field(default_factory=dict)


class MitigationRuleIn(BaseModel):
    """The fallback of causal mitigation and its overrides. `clauses` + `default`: a declared rule over
    your own signal names (first matching clause wins); no clauses and no default: the practice learned
    from your history. `overrides` omitted: the built-in hard-fault overrides."""

    model_config = ConfigDict(extra="forbid")

    clauses: list[RuleClause] = Field(default_factory=list, max_length=100)
    default: str | None = Field(default=None, min_length=1, max_length=64)
    overrides: OverridesIn | None = None

    @model_validator(mode="after")
    def _default_with_clauses(self) -> MitigationRuleIn:
        if self.clauses and self.default is None:
            raise ValueError("a declared rule with clauses needs a default action (when no clause matches)")
        if isinstance(self.default, str) and not self.default.strip():
            raise ValueError("default must name an action")
        return self


class MitigationRuleOut(BaseModel):
    source: Literal["declared_rule", "learned_practice"]
    rule: dict[str, Any] | None = Field(description="The declared rule (None: learned practice)")
    overrides: dict[str, dict[str, str]]
    version: int | None = Field(description="Version of the stored setting (None: never set)")
    updated_at: datetime | None
    warnings: list[str] = Field(
        default_factory=list, description="Actions or signals the latest trained model has not seen"
    )
