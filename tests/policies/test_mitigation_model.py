"""The mitigation model: it learns the fleet's practice, compares four learners and the strictness by
doubly-robust off-policy value on held-out history, reports what it would have saved, is blind to the
outcome's units, refuses histories it cannot learn from with a reason, and survives a round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from policies.mitigation_learners import LEARNERS
from policies.mitigation_model import FeatureEncoder, InsufficientHistory, MitigationModel, ModelNotFitted
from policies.mitigation_ope import Strictness, dr_scores, gate, saving
from policies.mitigation_practice import DeclaredRule
from policies.mitigation_synthetic import generate
from policies.mitigation_types import NodeEvent, NodeEventRecord
from policies.types import InvalidPolicyInput
from tests.policies.examples_mitigation import event, history, small_model


def _scaled(records: list[NodeEventRecord], factor: float) -> list[NodeEventRecord]:
    return [
        NodeEventRecord(
            r.signals, r.context, r.kind, r.severity, r.action, (r.downtime_minutes or 0) * factor
        )
        for r in records
    ]


def test_fit_refuses_too_little_history_and_says_how_much_is_needed() -> None:
    with pytest.raises(InsufficientHistory, match="at least 200"):
        MitigationModel().fit(generate(120, seed=1).records)


def test_a_history_with_one_action_gets_a_reason_not_a_crash() -> None:
    one = [r for r in history().records if r.action == "observe"]
    with pytest.raises(InsufficientHistory, match="at least two actions"):
        MitigationModel().fit(one)


def test_rare_actions_are_dropped_and_counted_unless_asked_for() -> None:
    records = [r for r in history().records if r.action != "reboot"][:600]
    records += [r for r in history().records if r.action == "reboot"][:5]
    model = MitigationModel(n_estimators=8, learners=("t_learner",)).fit(records)
    assert "reboot" not in model.actions and model.describe()["dropped"]["rare_action:reboot"] == 5
    with pytest.raises(InsufficientHistory, match="reboot"):
        MitigationModel(n_estimators=8).fit(records, actions=["observe", "reboot", "live_migrate"])


def test_practice_is_the_most_probable_logged_action() -> None:
    data, model = history(), small_model()
    ok = ~data.hard_fault
    events = [e for e, k in zip(data.events, ok, strict=True) if k]
    actions, prob = model.practice(events)
    logged = [data.actions[i] for i in data.logged[ok]]
    assert np.mean([a == b for a, b in zip(actions, logged, strict=True)]) > 0.6
    assert ((prob > 0) & (prob <= 1)).all()
    assert model.describe()["fallback_policy"]["source"] == "learned_practice"


def test_all_four_learners_are_compared_and_the_selection_is_reported() -> None:
    info = small_model().describe()
    json.dumps(info, allow_nan=False)
    selection = info["selection"]
    assert set(selection["learners"]) == set(LEARNERS)
    assert selection["learner"] in LEARNERS
    chosen = selection["learners"][selection["learner"]]["best"]
    assert chosen["saving"] == pytest.approx(info["savings"]["saving"])
    assert info["savings"]["ci90"][0] > 0  # it beats the logged policy on this history
    assert "cuts downtime by" in info["savings"]["statement"] and "90 % CI" in info["savings"]["statement"]


def test_selection_is_blind_to_the_outcome_units() -> None:
    records = history().records
    minutes = MitigationModel(n_estimators=8, learners=("t_learner", "x_learner")).fit(records)
    seconds = MitigationModel(n_estimators=8, learners=("t_learner", "x_learner")).fit(_scaled(records, 60.0))
    assert minutes.learner == seconds.learner and minutes.strictness == seconds.strictness
    assert minutes.saving is not None and seconds.saving is not None
    assert seconds.saving.saving == pytest.approx(minutes.saving.saving, abs=0.02)


def test_without_an_effect_no_setting_is_established() -> None:
    rng = np.random.default_rng(3)
    records = [
        NodeEventRecord(
            {"a": float(rng.normal()), "b": float(rng.normal())}, {}, "k", "warning",
            str(rng.choice(["x", "y", "z"])), float(rng.gamma(2.0, 10.0)),
        )
        for _ in range(900)
    ]  # fmt: skip
    model = MitigationModel(n_estimators=8, learners=("t_learner",)).fit(records)
    assert model.learner is None and model.strictness is None
    events = [r.event for r in records[:20]]
    fallback, _ = model.practice(events)
    actions, codes = model.gate(model.estimate(events, fallback), fallback)
    assert actions == fallback and set(codes) == {"not_established"}


def test_dr_estimate_of_a_fixed_policy_covers_its_true_value() -> None:
    data = generate(3000, seed=5, explore=1.0)  # uniform logging: the propensity is known, 1/4
    ok = ~data.hard_fault
    y = np.array([r.downtime_minutes for r in data.records])[ok]
    t, truth = data.logged[ok], data.expected[ok]
    rows = np.arange(len(y))
    prop = np.full(truth.shape, 0.25)
    mu = np.zeros_like(truth)  # no outcome model: pure inverse propensity weighting
    gamma = dr_scores(y, t, mu, prop)
    drain = saving(gamma[:, 3], y)
    true = 1 - truth[:, 3].mean() / truth[rows, t].mean()
    assert drain.lower <= true <= drain.upper
    assert drain.describe()["includes_zero"] == (drain.lower <= 0 <= drain.upper)


def test_gate_refuses_with_the_first_failing_knob() -> None:
    pred = np.array([[10.0, 5.0], [10.0, 9.5], [10.0, 2.0], [3.0, 9.0]])
    fallback = np.zeros(4, dtype=int)
    prop = np.array([[0.9, 0.1], [0.9, 0.1], [0.99, 0.005], [0.5, 0.5]])
    share = np.ones(4)
    action, code = gate(pred, fallback, prop, share, None, Strictness(0.01, 0.0, 0.1, 0.0))
    assert list(action) == [1, 0, 0, 0] and list(code) == [-1, 2, 0, -1]


def test_declared_rule_with_unknown_actions_is_refused() -> None:
    rule = DeclaredRule.from_mapping({"clauses": [], "default": "teleport"})
    with pytest.raises(InvalidPolicyInput, match="teleport"):
        MitigationModel(n_estimators=8, learners=("t_learner",)).fit(history().records, rule=rule)


def test_encoder_reports_missing_and_unseen_signals() -> None:
    encoder = FeatureEncoder.fit([event(ecc=1), event(ecc=5, hardware="a100")])
    lacking = NodeEvent({"ecc_errors": 3.0, "fan_rpm": 1.0}, {"hardware": "h100"}, "ecc_errors")
    assert "signal.xid_errors" in encoder.missing(lacking) and encoder.unseen(lacking) == ["signal.fan_rpm"]
    row = encoder.transform([lacking])[0]
    assert row[encoder.names.index("signal.xid_errors")] == 0.0  # the training median


def test_round_trip_through_bytes_gives_the_same_estimates() -> None:
    model = small_model()
    events = [event(ecc=e) for e in (0, 30, 300)]
    fallback, _ = model.practice(events)
    again = MitigationModel.from_bytes(model.to_bytes())
    np.testing.assert_allclose(
        again.estimate(events, fallback).expected, model.estimate(events, fallback).expected
    )


def test_unfitted_or_foreign_artifacts_fail_clearly() -> None:
    with pytest.raises(ModelNotFitted):
        MitigationModel().to_bytes()
    with pytest.raises(ModelNotFitted):
        MitigationModel.from_bytes(b"not a pickle")
    with pytest.raises(InvalidPolicyInput):
        MitigationModel(learners=("magic",))
