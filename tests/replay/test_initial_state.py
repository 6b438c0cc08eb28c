"""Every policy starts from the same state (a takeover of the static plan, or a cold start), and the
first scale-out waits for the cold start like any other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from replay.adapters import POLICIES
from replay.engine import simulate
from replay.traces import ReplayError, load_trace
from tests.replay.conftest import QUIET, long_trace

CONFIG = {**QUIET, "serving": {"replica_capacity": 10}, "scaling": {"min_observations": 5}}


@pytest.fixture
def trace(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_trace(long_trace(tmp_path / "load.csv", hours=1.0), "long", 10.0)


def test_all_policies_start_from_the_static_plan(trace) -> None:  # type: ignore[no-untyped-def]
    starts, plans = {}, {}
    for policy in POLICIES:
        rec, facts = simulate(trace, policy, CONFIG, seed=0)
        starts[policy] = facts["initial_replicas"]
        plans[policy] = rec.arrays["replicas"][0]
        # scale-in is immediate but scale-out waits: nobody is above the shared start at t = 0
        assert (rec.arrays["ready"][0] <= facts["initial_replicas"]).all()
    first = starts["static-peak"]
    assert all(np.array_equal(first, s) for s in starts.values())
    assert np.array_equal(plans["static-peak"], first)  # the default start is the static plan itself
    assert (first > 1).all()


def test_cold_start_is_the_same_scenario_for_every_policy(trace) -> None:  # type: ignore[no-untyped-def]
    config = {**CONFIG, "initial_replicas": "cold", "cold_start_seconds": 120}
    for policy in POLICIES:
        rec, facts = simulate(trace, policy, config, seed=0)
        assert (facts["initial_replicas"] == 1).all()
        # no policy, not even static peak or the oracle, has more than min_replicas ready before 120 s
        assert (rec.arrays["ready"][:12] == 1).all(), policy
    static, _ = simulate(trace, "static-peak", config, seed=0)
    assert static.arrays["ready"][12:].min() > 1  # then the plan arrives


def test_explicit_initial_replicas_and_bad_ones(trace) -> None:  # type: ignore[no-untyped-def]
    _, facts = simulate(trace, "hpa", {**CONFIG, "initial_replicas": [3, 4]}, seed=0)
    assert facts["initial_replicas"].tolist() == [3, 4]
    for bad in ("warm", [1], -1, True):
        with pytest.raises(ReplayError, match="initial_replicas"):
            simulate(trace, "hpa", {**CONFIG, "initial_replicas": bad}, seed=0)
