"""The causal mitigation model: it removes the legacy rule's confounding, ranks actions per event, says
how sure it is, refuses too little history, and survives a round trip through bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from policies.mitigation_model import FeatureEncoder, InsufficientHistory, MitigationModel, ModelNotFitted
from policies.mitigation_synthetic import generate, in_thin_region
from policies.mitigation_types import HARD_FAULT_KINDS, NodeEvent, NodeEventRecord
from tests.policies.examples_mitigation import event, history, small_model


def _test_set() -> tuple[list, np.ndarray]:
    data = generate(800, seed=21)
    keep = ~data.hard_fault
    return [e for e, k in zip(data.events, keep, strict=True) if k], data.expected[keep]


def test_fit_refuses_too_little_history_and_says_how_much_is_needed() -> None:
    with pytest.raises(InsufficientHistory, match="at least 200"):
        MitigationModel().fit(generate(120, seed=1).records)


def test_fit_names_the_action_with_too_few_events() -> None:
    records = [r for r in history().records if r.action != "reboot"][:600]
    records += [r for r in history().records if r.action == "reboot"][:5]
    with pytest.raises(InsufficientHistory, match="reboot"):
        MitigationModel(n_estimators=8).fit(records)


def test_effects_undo_the_confounding_that_fools_a_naive_comparison() -> None:
    data, model = history(), small_model()
    ok = ~data.hard_fault
    y = np.array([r.downtime_minutes for r in data.records])
    drain, observe = ok & (data.logged == 3), ok & (data.logged == 0)
    true = float((data.expected[ok, 3] - data.expected[ok, 0]).mean())
    naive = float(y[drain].mean() - y[observe].mean())
    estimate = model.describe()["ate_vs_reference_90"]["drain_and_repair"]["effect"]
    assert abs(estimate - true) < 0.5 * abs(naive - true)


def test_per_event_effects_track_the_true_effects() -> None:
    events, truth = _test_set()
    est = small_model().estimate(events, ["observe"] * len(events))
    for j in range(1, 4):
        assert np.corrcoef(est.effect[:, j], truth[:, j] - truth[:, 0])[0, 1] > 0.6
    assert np.mean(est.expected.argmin(axis=1) == truth.argmin(axis=1)) > 0.6


def test_intervals_widen_with_confidence_and_vanish_against_itself() -> None:
    events, _ = _test_set()
    model = small_model()
    _, lo80, hi80 = model.effect_interval(events[:50], "reboot", "observe", alpha=0.2)
    effect, lo99, hi99 = model.effect_interval(events[:50], "reboot", "observe", alpha=0.01)
    assert (lo99 <= lo80).all() and (hi80 <= hi99).all() and (hi99 - lo99 > 0).all()
    assert ((lo80 <= effect) & (effect <= hi80)).all()
    same, lo, hi = model.effect_interval(events[:5], "reboot", "reboot")
    np.testing.assert_allclose(np.c_[same, lo, hi], 0.0)


def test_effect_vs_any_action_is_the_difference_of_effects_vs_reference() -> None:
    events, _ = _test_set()
    model = small_model()
    vs_ref = model.estimate(events[:40], ["observe"] * 40)
    vs_reboot = model.estimate(events[:40], ["reboot"] * 40)
    np.testing.assert_allclose(vs_reboot.effect, vs_ref.effect - vs_ref.effect[:, [2]], atol=1e-8)
    np.testing.assert_allclose(vs_ref.expected, vs_reboot.expected)


def test_support_counts_past_events_with_the_same_labelled_context() -> None:
    model, data = small_model(), history()
    est = model.estimate([event(hardware="v100", workload="training"), event()], ["observe"] * 2)
    thin = sum(in_thin_region(r) for r in data.records if r.kind not in HARD_FAULT_KINDS)
    assert est.support[0] == thin < 20 < 200 < est.support[1]
    assert est.profiles[0] == ("hardware=v100", "workload=training")


def test_encoder_fills_missing_numbers_with_training_medians_and_ignores_unseen_labels() -> None:
    records = history().records[:300]
    encoder = FeatureEncoder.fit([r.event for r in records])
    base = event(hardware="tpu-v9")
    sparse = NodeEvent({"ecc_errors": 3.0, "xid_errors": 0.0}, base.context, base.kind, base.severity)
    row = encoder.transform([sparse])[0]
    names = encoder.names
    median = np.median([r.signals["temperature_c"] for r in records])
    assert row[names.index("signal.temperature_c")] == pytest.approx(median)
    assert all(row[i] == 0 for i, n in enumerate(names) if n.startswith("context.hardware="))
    assert row[names.index("context.workload=inference")] == 1.0


def test_describe_is_json_and_counts_what_was_used_and_dropped() -> None:
    info = small_model().describe()
    json.dumps(info)
    data = history()
    assert info["n_events"] == int((~data.hard_fault).sum())
    assert info["dropped"] == {"hard_fault": int(data.hard_fault.sum())}
    assert info["actions"][0] == info["reference"] == "observe"
    assert sum(info["per_action"].values()) == info["n_events"]
    assert 0 < info["metrics"]["nuisance_r2_downtime"] < 1


def test_round_trip_through_bytes_gives_the_same_estimates() -> None:
    events, _ = _test_set()
    model = small_model()
    again = MitigationModel.from_bytes(model.to_bytes())
    a, b = model.estimate(events[:30], ["observe"] * 30), again.estimate(events[:30], ["observe"] * 30)
    np.testing.assert_allclose(a.expected, b.expected)
    np.testing.assert_allclose(a.upper, b.upper)
    assert again.describe() == model.describe()


def test_unfitted_or_foreign_artifacts_fail_clearly() -> None:
    with pytest.raises(ModelNotFitted, match="fit"):
        MitigationModel().estimate([event()], ["observe"])
    with pytest.raises(ModelNotFitted):
        MitigationModel().to_bytes()
    with pytest.raises(ModelNotFitted, match="artifact"):
        MitigationModel.from_bytes(b"not a model")


def test_records_without_an_outcome_are_skipped() -> None:
    records = list(history().records[:400])
    records.append(NodeEventRecord({"ecc_errors": 1.0}, {}, "ecc_errors", "warning", None, None))
    model = MitigationModel(n_estimators=8, nuisance_estimators=10).fit(records)
    assert model.describe()["dropped"]["no_outcome"] == 1
