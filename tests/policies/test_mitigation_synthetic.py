"""The semi-synthetic generator: reproducible, confounded, heterogeneous, with a rare thin-data region."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from policies.mitigation_rules import legacy_action
from policies.mitigation_synthetic import expected_downtime, generate, in_thin_region
from policies.mitigation_types import MitigationInput, NodeEvent, NodeEventRecord
from policies.types import InvalidPolicyInput
from tests.policies.examples_mitigation import event, history


def test_same_seed_same_history_other_seed_differs() -> None:
    a, b, c = generate(200, seed=3), generate(200, seed=3), generate(200, seed=4)
    assert a.records == b.records
    np.testing.assert_array_equal(a.expected, b.expected)
    assert a.records != c.records


def test_logged_actions_are_confounded_by_the_signals() -> None:
    data = history()
    xid = np.array([r.signals["xid_errors"] for r in data.records])
    drained = np.array([r.action == "drain_and_repair" for r in data.records])
    ok = ~data.hard_fault
    assert drained[ok & (xid >= 4)].mean() > 0.6 > 0.15 > drained[ok & (xid == 0)].mean()


def test_without_exploration_the_log_is_the_legacy_rule_seen_through_noise() -> None:
    data = generate(600, seed=5, explore=0.0)
    agree = np.mean([r.action == legacy_action(r.event)[0] for r in data.records])
    assert agree > 0.85


def test_effects_are_heterogeneous_every_action_is_sometimes_best() -> None:
    data = history()
    best = Counter(data.oracle())
    assert all(best[a] >= 0.03 * len(data.records) for a in data.actions), best
    assert (data.expected >= 0).all()


def test_thin_region_is_rare_and_has_its_own_truth() -> None:
    data = generate(3000, seed=1)
    assert 0 < data.thin.mean() < 0.01
    probe = generate(50, seed=2, thin_only=True)
    assert probe.thin.all()
    thin, common = (
        event(ecc=60, xid=2, hardware="v100", workload="training", age_days=1500),
        event(ecc=60, xid=2, hardware="a100", workload="training", age_days=1500),
    )
    assert in_thin_region(thin) and not in_thin_region(common)
    assert expected_downtime(thin)["drain_and_repair"] > expected_downtime(thin)["reboot"]
    assert expected_downtime(common)["drain_and_repair"] < expected_downtime(common)["reboot"]


def test_hard_faults_are_always_drained_and_draining_is_best() -> None:
    data = generate(1000, seed=9)
    assert data.hard_fault.any()
    for i in np.flatnonzero(data.hard_fault):
        assert data.records[i].action == "drain_and_repair"
        assert data.oracle()[i] == "drain_and_repair"


def test_downtime_of_reads_the_true_potential_outcomes() -> None:
    data = generate(20, seed=0)
    chosen = data.oracle()
    np.testing.assert_allclose(data.downtime_of(chosen), data.expected.min(axis=1))


def test_record_from_a_node_events_row_with_json_columns() -> None:
    row = {
        "node_id": "gpu-7",
        "kind": "gpu_xid",
        "severity": "error",
        "signals": json.dumps({"xid_errors": 3, "ecc_errors": 10}),
        "context": json.dumps({"hardware": "a100", "node_age_days": 100}),
        "action_taken": "reboot",
        "downtime_minutes": 12.5,
    }
    record = NodeEventRecord.from_row(row)
    assert record.signals == {"xid_errors": 3.0, "ecc_errors": 10.0} and record.has_outcome
    assert record.context == {"hardware": "a100", "node_age_days": 100.0}
    inputs = MitigationInput.from_row(row, nodes_out_of_service=1, max_out_of_service=3)
    assert inputs.node == "gpu-7" and inputs.event == record.event


@pytest.mark.parametrize(
    "build",
    [
        lambda: NodeEvent({"ecc_errors": float("nan")}, {}, "ecc_errors"),
        lambda: NodeEvent({"ecc_errors": "many"}, {}, "ecc_errors"),  # type: ignore[dict-item]
        lambda: NodeEvent({}, {"workload": None}, "ecc_errors"),  # type: ignore[dict-item]
        lambda: NodeEvent({}, {}, ""),
        lambda: NodeEventRecord({}, {}, "ecc_errors", "warning", "reboot", -1.0),
        lambda: NodeEventRecord.from_row({"kind": "x", "signals": "{not json"}),
        lambda: MitigationInput("n", event(), -1, 2),
        lambda: MitigationInput("", event(), 0, 2),
    ],
)
def test_bad_inputs_say_what_is_wrong(build: object) -> None:
    with pytest.raises(InvalidPolicyInput):
        build()  # type: ignore[operator]
