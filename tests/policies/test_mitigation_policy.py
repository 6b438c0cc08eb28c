"""The causal mitigation policy and the legacy rule: choice, the fallback (learned practice, a declared
rule, the legacy rule) and its stated source and reason, overrides, cap, evidence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from policies.mitigation import CausalMitigationPolicy
from policies.mitigation_practice import DeclaredRule
from policies.mitigation_rules import HardFaultOverrides, LegacyMitigationRule, legacy_action
from policies.mitigation_synthetic import generate
from policies.mitigation_types import MitigationInput, NodeEvent
from policies.types import Decision, InvalidPolicyInput, build_policy, registered_policies
from tests.policies.examples_mitigation import event, example_inputs, fallback_inputs, small_model

RULE = DeclaredRule.from_mapping(
    {"clauses": [{"when": [{"signal": "ecc_errors", "op": ">=", "value": 100}], "action": "reboot"}],
     "default": "observe"}
)  # fmt: skip


@pytest.fixture(scope="module")
def decided() -> tuple[list[MitigationInput], list[Decision]]:
    """The causal policy over 600 fresh synthetic events (cap out of reach)."""
    data = generate(600, seed=31)
    inputs = [MitigationInput(f"n{i}", e, 0, 100, small_model()) for i, e in enumerate(data.events)]
    return inputs, CausalMitigationPolicy().decide_many(inputs)


def test_both_policies_are_registered_as_mitigation() -> None:
    assert {"mitigation_causal", "mitigation_legacy"} <= set(registered_policies("mitigation"))
    assert isinstance(build_policy("mitigation_causal", rule=RULE), CausalMitigationPolicy)


def test_legacy_rule_escalates_with_the_worst_signal() -> None:
    assert legacy_action(event())[0] == "observe"
    assert legacy_action(event(ecc=25))[0] == "live_migrate"
    assert legacy_action(event(ecc=150))[0] == "reboot"
    assert legacy_action(event(xid=5))[0] == "drain_and_repair"
    assert legacy_action(event(kind="disk_failure"))[0] == "drain_and_repair"


def test_legacy_policy_respects_the_cap_except_for_hard_faults() -> None:
    rule = LegacyMitigationRule()
    capped = rule.decide(MitigationInput("n", event(xid=5), 3, 3))
    assert capped.action == "live_migrate" and capped.guardrails[0].name == "out_of_service_cap"
    hard = rule.decide(MitigationInput("n", event(kind="gpu_fell_off_bus", severity="critical"), 3, 3))
    assert hard.action == "drain_and_repair" and not hard.guardrails


def test_without_a_model_or_rule_the_legacy_rule_answers_and_says_so() -> None:
    decision = CausalMitigationPolicy().decide(MitigationInput("n", event(ecc=150), 0, 5))
    assert decision.action == "reboot" and decision.details["fallback"] == "no_model"
    assert decision.details["fallback_policy"]["source"] == "legacy_rule"
    assert "legacy rule" in str(decision.fallback_reason)


def test_every_decision_names_its_fallback_source_and_reason(decided) -> None:
    for d in decided[1]:
        source = d.details["fallback_policy"]
        assert source["source"] == "learned_practice" and source["why"] and source["action"]
        if d.fell_back:
            assert "learned practice decides" in str(d.fallback_reason)


def test_learned_choices_beat_practice_and_the_legacy_rule_on_fresh_events(decided) -> None:
    data = generate(600, seed=31)
    causal = data.downtime_of([d.action for d in decided[1]]).mean()
    practice = data.downtime_of([d.details["fallback_action"] for d in decided[1]]).mean()
    legacy = data.downtime_of([legacy_action(e)[0] for e in data.events]).mean()
    assert causal < 0.75 * practice and causal < 0.75 * legacy
    assert causal >= data.downtime_of(data.oracle()).mean()


def test_a_declared_rule_is_the_fallback_when_given() -> None:
    lacking = NodeEvent({"ecc_errors": 150.0}, {"hardware": "h100"}, "ecc_errors")
    decision = CausalMitigationPolicy(small_model(), rule=RULE).decide(MitigationInput("n", lacking, 0, 5))
    assert decision.action == "reboot" and decision.details["fallback"] == "missing_signals"
    assert decision.details["fallback_policy"]["source"] == "declared_rule"
    assert "declared rule clause 1" in str(decision.fallback_reason)
    assert "xid_errors" in str(decision.fallback_reason)


def test_a_rule_action_the_history_never_took_falls_back_with_the_reason() -> None:
    rule = DeclaredRule.from_mapping({"clauses": [], "default": "call_vendor"})
    decision = CausalMitigationPolicy(small_model(), rule=rule).decide(MitigationInput("n", event(), 0, 5))
    assert decision.action == "call_vendor" and decision.details["fallback"] == "unknown_fallback_action"
    assert "call_vendor" in str(decision.fallback_reason)


def test_unseen_signals_are_ignored_and_named() -> None:
    odd = event(ecc=30)
    odd.signals["fan_rpm"] = 9000.0
    decision = CausalMitigationPolicy(small_model()).decide(MitigationInput("n", odd, 0, 5))
    assert decision.details["ignored_signals"] == ["signal.fan_rpm"]


def test_hard_fault_overrides_are_configurable() -> None:
    hard = event(ecc=5, kind="gpu_fell_off_bus", severity="critical")
    default = CausalMitigationPolicy(small_model()).decide(MitigationInput("n", hard, 5, 2))
    assert default.action == "drain_and_repair" and default.guardrails[0].name == "hard_fault_override"
    none = HardFaultOverrides.from_mapping({"kinds": {}, "severities": {}})
    free = CausalMitigationPolicy(small_model()).decide(MitigationInput("n", hard, 0, 2, overrides=none))
    assert not any(g.name == "hard_fault_override" for g in free.guardrails)
    own = HardFaultOverrides.from_mapping({"kinds": {"ecc_errors": "reboot"}})
    forced = CausalMitigationPolicy(small_model(), overrides=own).decide(MitigationInput("n", event(), 0, 2))
    assert forced.action == "reboot"


def test_the_cap_keeps_the_node_in_service(decided) -> None:
    inp, d = next(
        (i, d) for i, d in zip(*decided, strict=True) if d.params["takes_out_of_service"] and not d.fell_back
    )
    capped = CausalMitigationPolicy().decide(MitigationInput(inp.node, inp.event, 4, 4, small_model()))
    assert not capped.params["takes_out_of_service"]
    assert capped.guardrails[0].name == "out_of_service_cap" and capped.guardrails[0].before == d.action


def test_candidates_carry_expected_downtime_and_the_effect_vs_fallback(decided) -> None:
    d = next(d for d in decided[1] if d.details["causal_choice"] is not None)
    costs = {c.action: c.expected_cost for c in d.candidates}
    assert set(costs) == set(small_model().actions) and min(costs.values()) >= 0
    fallback = next(c for c in d.candidates if c.action == d.details["fallback_action"])
    assert fallback.params["effect_vs_fallback"] == 0 and fallback.risk == 0


def test_model_as_bytes_and_single_decisions_match_the_batch(decided) -> None:
    inputs = decided[0][:20]
    plain = [MitigationInput(i.node, i.event, 0, 100) for i in inputs]
    from_bytes = CausalMitigationPolicy(small_model().to_bytes()).decide_many(plain)
    for a, b, inp in zip(decided[1][:20], from_bytes, inputs, strict=True):
        assert a.explanation() == b.explanation()
        assert CausalMitigationPolicy().decide(inp).explanation() == a.explanation()
        json.dumps(a.explanation(), allow_nan=False)


def test_examples_are_well_formed_and_fallbacks_fall_back() -> None:
    for name, inputs in example_inputs() + fallback_inputs():
        first, second = build_policy(name).decide(inputs), build_policy(name).decide(inputs)
        assert first.action in {c.action for c in first.candidates}
        assert first.explanation() == second.explanation()
    assert all(build_policy(n).decide(i).fell_back for n, i in fallback_inputs())


def test_rejects_what_it_cannot_decide_on() -> None:
    with pytest.raises(InvalidPolicyInput):
        CausalMitigationPolicy().decide({"node": "n"})  # type: ignore[arg-type]
    with pytest.raises(InvalidPolicyInput):
        LegacyMitigationRule(in_service_action="reboot")
    with pytest.raises(InvalidPolicyInput):
        clause = {"when": [{"signal": "a", "op": "~", "value": 1}], "action": "x"}
        DeclaredRule.from_mapping({"clauses": [clause], "default": "y"})
    assert np.isfinite(small_model().describe()["savings"]["saving"])
