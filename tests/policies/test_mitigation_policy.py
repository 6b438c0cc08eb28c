"""The causal mitigation policy and the legacy rule: choice, fallback, overrides, cap, evidence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from policies.mitigation import CausalMitigationPolicy
from policies.mitigation_rules import LegacyMitigationRule, legacy_action
from policies.mitigation_synthetic import generate
from policies.mitigation_types import MitigationInput, takes_out_of_service
from policies.types import Decision, InvalidPolicyInput, build_policy, registered_policies
from tests.policies.examples_mitigation import event, example_inputs, fallback_inputs, small_model


@pytest.fixture(scope="module")
def decided() -> tuple[list[MitigationInput], list[Decision]]:
    """The causal policy over 600 fresh synthetic events (cap out of reach)."""
    data = generate(600, seed=31)
    inputs = [MitigationInput(f"n{i}", e, 0, 100, small_model()) for i, e in enumerate(data.events)]
    return inputs, CausalMitigationPolicy().decide_many(inputs)


def _first(
    decided: tuple[list[MitigationInput], list[Decision]], test: object
) -> tuple[MitigationInput, Decision]:
    return next((i, d) for i, d in zip(*decided, strict=True) if test(i, d))  # type: ignore[operator]


def test_both_policies_are_registered_as_mitigation() -> None:
    names = registered_policies("mitigation")
    assert {"mitigation_causal", "mitigation_legacy"} <= set(names)
    assert isinstance(build_policy("mitigation_causal", alpha=0.1), CausalMitigationPolicy)


def test_legacy_rule_escalates_with_the_worst_signal() -> None:
    assert legacy_action(event())[0] == "observe"
    assert legacy_action(event(ecc=25))[0] == "live_migrate"
    assert legacy_action(event(ecc=150))[0] == "reboot"
    assert legacy_action(event(xid=2))[0] == "reboot"
    assert legacy_action(event(xid=5))[0] == "drain_and_repair"
    assert legacy_action(event(temp=93))[0] == "drain_and_repair"
    assert legacy_action(event(kind="disk_failure"))[0] == "drain_and_repair"


def test_legacy_policy_respects_the_cap_except_for_hard_faults() -> None:
    rule = LegacyMitigationRule()
    capped = rule.decide(MitigationInput("n", event(xid=5), 3, 3))
    assert capped.action == "live_migrate" and capped.guardrails[0].name == "out_of_service_cap"
    hard = rule.decide(MitigationInput("n", event(kind="gpu_fell_off_bus", severity="critical"), 3, 3))
    assert hard.action == "drain_and_repair" and not hard.guardrails


def test_without_a_model_it_falls_back_to_the_legacy_rule() -> None:
    decision = CausalMitigationPolicy().decide(MitigationInput("n", event(ecc=150), 0, 5))
    assert decision.action == "reboot" and decision.fell_back
    assert "no fitted" in str(decision.fallback_reason) and decision.details["fallback"] == "no_model"


def test_when_confident_it_recommends_the_lowest_expected_downtime(decided) -> None:
    confident = [(i, d) for i, d in zip(*decided, strict=True) if not d.fell_back and not d.guardrails]
    assert len(confident) > 100
    changed = 0
    for _, d in confident:
        costs = {c.action: c.expected_cost for c in d.candidates}
        assert d.action == min(costs, key=costs.__getitem__) == d.details["causal_choice"]
        changed += d.action != d.details["legacy_action"]
    assert changed > 50  # it does overrule the legacy rule, not just agree with it


def test_an_overruled_legacy_action_has_an_interval_below_zero(decided) -> None:
    _, d = _first(decided, lambda i, d: not d.fell_back and d.action != d.details["legacy_action"])
    chosen = next(c for c in d.candidates if c.action == d.action)
    low, high = chosen.params["interval"]
    assert low <= chosen.params["effect_vs_legacy"] <= high < 0
    assert high - low <= 60.0 and chosen.risk < 0.1


def test_candidates_carry_expected_downtime_and_probability_of_harm(decided) -> None:
    _, d = _first(decided, lambda i, d: d.details["causal_choice"] is not None)
    assert [c.action for c in d.candidates] == list(small_model().actions)
    for c in d.candidates:
        assert math.isfinite(c.expected_cost) and c.expected_cost >= 0 and 0 <= c.risk <= 1
        assert c.params["takes_out_of_service"] == takes_out_of_service(c.action)
    legacy = next(c for c in d.candidates if c.action == d.details["legacy_action"])
    assert legacy.risk == 0 and legacy.params["interval"] == [0.0, 0.0]


def test_uncertain_effects_fall_back(decided) -> None:
    inputs = [
        i for i, d in zip(*decided, strict=True) if not d.fell_back and d.action != d.details["legacy_action"]
    ]
    cautious = CausalMitigationPolicy(alpha=0.001).decide_many(inputs)
    assert any(d.details["fallback"] == "crosses_zero" for d in cautious)
    narrow = CausalMitigationPolicy(max_interval_width=1.0).decide_many(inputs)
    assert all(d.details["fallback"] == "too_wide" for d in narrow)
    for inp, d in zip(inputs, narrow, strict=True):
        assert d.action == legacy_action(inp.event)[0] and "wide" in str(d.fallback_reason)


def test_thin_data_falls_back_even_when_the_model_has_an_opinion() -> None:
    for _, inputs in fallback_inputs():
        decision = CausalMitigationPolicy().decide(inputs)
        assert decision.fell_back and decision.action == legacy_action(inputs.event)[0]
    thin = fallback_inputs()[1][1]
    decision = CausalMitigationPolicy().decide(thin)
    assert decision.details["fallback"] == "thin_support" and decision.details["causal_choice"]
    assert "hardware=v100, workload=training" in str(decision.fallback_reason)
    relaxed = CausalMitigationPolicy(min_support=0).decide(thin)
    assert relaxed.details["fallback"] != "thin_support"


def test_rare_actions_under_the_logging_policy_fall_back(decided) -> None:
    inputs = [
        i for i, d in zip(*decided, strict=True) if not d.fell_back and d.action != d.details["legacy_action"]
    ]
    strict = CausalMitigationPolicy(min_propensity=0.99).decide_many(inputs[:20])
    assert all(d.details["fallback"] == "thin_overlap" for d in strict)


def test_hard_faults_get_the_mandated_action_even_over_the_cap() -> None:
    hard = event(ecc=2, kind="gpu_fell_off_bus", severity="critical")
    decision = CausalMitigationPolicy().decide(MitigationInput("n", hard, 9, 2, small_model()))
    assert decision.action == "drain_and_repair" and not decision.fell_back
    assert [g.name for g in decision.guardrails] == ["hard_fault_override"]
    critical = CausalMitigationPolicy().decide(MitigationInput("n", event(severity="critical"), 0, 2))
    assert critical.action == "drain_and_repair" and critical.guardrails[0].after == "drain_and_repair"


def test_the_cap_keeps_the_node_in_service_with_the_best_in_service_action(decided) -> None:
    inp, d = _first(
        decided, lambda i, d: takes_out_of_service(d.action) and not d.fell_back and not d.guardrails
    )
    capped = CausalMitigationPolicy().decide(MitigationInput(inp.node, inp.event, 4, 4, small_model()))
    in_service = [c for c in capped.candidates if not c.params["takes_out_of_service"]]
    assert capped.action == min(in_service, key=lambda c: c.expected_cost).action
    assert capped.guardrails[0].name == "out_of_service_cap" and capped.guardrails[0].before == d.action
    assert not any(c.feasible for c in capped.candidates if c.params["takes_out_of_service"])
    below = CausalMitigationPolicy().decide(MitigationInput(inp.node, inp.event, 3, 4, small_model()))
    assert below.action == d.action and not below.guardrails


def test_model_in_the_constructor_or_as_bytes_decides_the_same(decided) -> None:
    inputs = decided[0][:25]
    plain = [MitigationInput(i.node, i.event, 0, 100) for i in inputs]
    from_bytes = CausalMitigationPolicy(small_model().to_bytes()).decide_many(plain)
    for a, b in zip(decided[1][:25], from_bytes, strict=True):
        assert a.explanation() == b.explanation() and a.action == b.action


def test_decide_matches_decide_many_and_is_json(decided) -> None:
    policy = CausalMitigationPolicy()
    for inp, d in list(zip(*decided, strict=True))[:15]:
        single = policy.decide(inp)
        assert single.action == d.action and single.explanation() == d.explanation()
        json.dumps(single.explanation(), allow_nan=False)


def test_examples_are_well_formed_and_deterministic() -> None:
    for name, inputs in example_inputs() + fallback_inputs():
        policy = build_policy(name)
        first, second = policy.decide(inputs), policy.decide(inputs)
        assert first.kind == "mitigation" and first.target == inputs.node
        assert first.action in {c.action for c in first.candidates}
        assert first.explanation() == second.explanation()
        json.dumps(first.explanation(), allow_nan=False)


def test_rejects_what_it_cannot_decide_on() -> None:
    with pytest.raises(InvalidPolicyInput):
        CausalMitigationPolicy().decide({"node": "n"})  # type: ignore[arg-type]
    with pytest.raises(InvalidPolicyInput):
        CausalMitigationPolicy(alpha=1.5)
    with pytest.raises(InvalidPolicyInput):
        LegacyMitigationRule(in_service_action="reboot")


def test_beats_the_legacy_rule_on_fresh_events(decided) -> None:
    data = generate(600, seed=31)
    causal = data.downtime_of([d.action for d in decided[1]]).mean()
    legacy = data.downtime_of([legacy_action(e)[0] for e in data.events]).mean()
    oracle = data.downtime_of(data.oracle()).mean()
    assert causal < 0.75 * legacy and oracle <= causal
    fell = np.array([d.fell_back for d in decided[1]])
    assert 0.05 < fell.mean() < 0.6


def test_normal_examples_do_not_fall_back_and_one_overrules_the_legacy_rule() -> None:
    decisions = [build_policy(n).decide(i) for n, i in example_inputs()]
    assert not any(d.fell_back for d in decisions)
    assert any(d.policy == "mitigation_causal" and d.action != d.details["legacy_action"] for d in decisions)


def test_after_a_fallback_the_cap_uses_the_legacy_rules_in_service_action() -> None:
    thin = fallback_inputs()[1][1]
    assert takes_out_of_service(legacy_action(thin.event)[0])
    for model in (None, small_model()):
        capped = MitigationInput(thin.node, thin.event, 2, 2, model)
        decision = CausalMitigationPolicy().decide(capped)
        assert decision.fell_back and decision.action == "live_migrate"
        assert decision.guardrails[0].name == "out_of_service_cap"
        assert "legacy rule's in-service" in decision.guardrails[0].reason
