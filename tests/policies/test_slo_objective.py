"""The SLO as the operator's knob: objectives parsed as SREs write them, refused when they cannot be
met, and a risk level tuned online that spends the violation budget."""

from __future__ import annotations

import numpy as np
import pytest

from policies.adaptive import BudgetController, ViolationHistory, budget_epsilon
from policies.slo import DEFAULT_SLO, ScalingSlo


def test_objectives_as_sres_write_them() -> None:
    late = ScalingSlo.from_mapping({"objective": "late_fraction", "max": 0.02})
    assert (late.objective.metric, late.objective.budget) == ("late_fraction", 0.02)
    assert not late.epsilon_override
    p99 = ScalingSlo.from_mapping({"objective": "p99_latency", "max_seconds": 2.0, "windows": 0.99})
    assert p99.objective.per_window and p99.objective.budget == pytest.approx(0.01)
    nested = ScalingSlo.from_mapping({"objective": {"metric": "p99_ttft", "max_seconds": 3}})
    assert nested.objective.max_seconds == 3.0 and nested.objective.budget == pytest.approx(0.01)
    assert DEFAULT_SLO.objective.describe() == "late_fraction <= 1 %"
    expert = ScalingSlo.from_mapping({"epsilon": 0.2})
    assert expert.epsilon_override and expert.epsilon == 0.2


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        ({"objective": "p95_fun"}, "unknown metric 'p95_fun'"),
        ({"objective": "late_fraction", "max": 0}, "cannot be met"),
        ({"objective": "p99_latency", "max_seconds": 1, "windows": 1.0}, "cannot be promised"),
        ({"objective": "p99_latency"}, "needs max_seconds"),
        ({"objective": "late_fraction", "max": "1%"}, "finite number"),
        ({"max": 0.01}, "need an objective"),
        ({"objective": {"metric": "late_fraction", "budget": 0.1}}, "unknown keys"),
    ],
)
def test_bad_objectives_are_refused_with_a_reason(slo: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScalingSlo.from_mapping(slo)


def test_the_risk_level_converges_to_the_budget_whatever_the_calibration() -> None:
    """Windows violate with probability 4·ε (the forecast under-covers 4x) or ε/3 (over-covers): the
    controller finds the ε at which the long-run rate equals the 2 % budget either way."""
    rng = np.random.default_rng(0)
    for miscalibration in (4.0, 1.0 / 3.0):
        control = BudgetController(0.02, 50)
        for _ in range(4000):
            p = np.minimum(miscalibration * control.epsilon, 1.0)
            control.update((rng.uniform(size=50) < p).astype(float), np.ones(50))
        assert control.rate().mean() == pytest.approx(0.02, rel=0.1)
        assert np.mean(control.epsilon) == pytest.approx(0.02 / miscalibration, rel=0.35)  # E[p(ε)] = budget


def test_stateless_replay_of_the_update_from_counts() -> None:
    assert budget_epsilon(0.01, None) == 0.05
    quiet = budget_epsilon(0.01, ViolationHistory(40, 0))
    loud = budget_epsilon(0.01, ViolationHistory(40, 4))
    assert loud < 0.05 < quiet <= 0.5
