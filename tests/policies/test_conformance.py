"""One conformance suite over every registered policy (docs/architecture.md §6.6): on each example input a
policy returns a well-formed Decision whose evidence is plain JSON, the same input gives the same
Decision, and on inputs that force it to fall back it says why."""

from __future__ import annotations

import importlib
import json
import math
from typing import Any

import pytest

from policies.catalog import load_all
from policies.types import DECISION_KINDS, Decision, build_policy, registered_policies

EXAMPLE_MODULES = (
    "tests.policies.examples_scaling",
    "tests.policies.examples_power",
    "tests.policies.examples_mitigation",
)


def _gather(function: str) -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []
    for name in EXAMPLE_MODULES:
        module = importlib.import_module(name)
        cases.extend(getattr(module, function)())
    return cases


load_all()
EXAMPLES = _gather("example_inputs")
FALLBACKS = _gather("fallback_inputs")


def test_every_registered_policy_has_examples() -> None:
    covered = {name for name, _ in EXAMPLES}
    missing = set(registered_policies()) - covered
    assert not missing, f"policies without conformance examples: {sorted(missing)}"
    kinds = {getattr(cls, "kind", "") for cls in registered_policies().values()}
    assert {getattr(registered_policies()[name], "kind", "") for name, _ in FALLBACKS} == kinds


def _check(decision: Decision, policy: str) -> dict[str, Any]:
    assert isinstance(decision, Decision)
    assert decision.kind in DECISION_KINDS and decision.kind == registered_policies()[policy].kind  # type: ignore[attr-defined]
    assert decision.policy == policy
    assert decision.target and decision.action
    evidence = decision.explanation()
    text = json.dumps(evidence, allow_nan=False)  # plain JSON: no NaN/inf, no numpy types
    assert json.loads(text) == evidence
    json.dumps(decision.params, allow_nan=False, default=None)
    for candidate in evidence["candidates"]:
        assert candidate["risk"] is None or 0.0 <= candidate["risk"] <= 1.0
        assert candidate["expected_cost"] is None or not math.isnan(candidate["expected_cost"])
    for guardrail in evidence["guardrails"]:
        assert guardrail["name"] and guardrail["reason"]
    return evidence


@pytest.mark.parametrize(
    ("policy", "inputs"), EXAMPLES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(EXAMPLES)]
)
def test_decision_is_well_formed_and_deterministic(policy: str, inputs: Any) -> None:
    first = _check(build_policy(policy).decide(inputs), policy)
    second = _check(build_policy(policy).decide(inputs), policy)
    assert first == second


@pytest.mark.parametrize(
    ("policy", "inputs"), FALLBACKS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(FALLBACKS)]
)
def test_fallback_says_why(policy: str, inputs: Any) -> None:
    decision = build_policy(policy).decide(inputs)
    _check(decision, policy)
    assert decision.fallback_reason, f"{policy} fell back without saying why"
