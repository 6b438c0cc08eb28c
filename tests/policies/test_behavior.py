"""HPA `behavior` semantics on hand-worked examples (the HPA controller's rules), the strict parser, and
the HPA's metric arithmetic that a KEDA answer must survive."""

from __future__ import annotations

import pytest

from policies.behavior import (
    Behavior,
    ScaleHistory,
    apply_behavior,
    hpa_replicas_for_average_value,
)
from policies.types import InvalidPolicyInput

EXACT = {"scaleUp": {"tolerance": 0}, "scaleDown": {"tolerance": 0, "stabilizationWindowSeconds": 0}}


def test_defaults_are_the_hpas() -> None:
    b = Behavior.from_mapping({})
    assert b.scale_up.stabilization_window_seconds == 0 and b.scale_down.stabilization_window_seconds == 300
    assert [(p.type, p.value, p.period_seconds) for p in b.scale_up.policies] == [
        ("Percent", 100, 15), ("Pods", 4, 15)
    ]  # fmt: skip
    assert b.scale_up.tolerance == b.scale_down.tolerance == 0.1


def test_scale_up_rate_takes_the_policy_allowing_most_change() -> None:
    b = Behavior.from_mapping(EXACT)
    # from 3: Percent 100 allows 6, Pods 4 allows 7 -> Max selects 7
    assert apply_behavior(b, 20, 3, 1000.0, ScaleHistory()).replicas == 7
    # 2 pods were already added within the last 15 s: the period started at 5 -> max(10, 9) = 10
    assert apply_behavior(b, 20, 7, 1000.0, ScaleHistory(changes=[(990.0, 2)])).replicas == 10
    low = Behavior.from_mapping({"scaleUp": {"selectPolicy": "Min", "tolerance": 0}})
    assert apply_behavior(low, 20, 3, 1000.0, ScaleHistory()).replicas == 6


def test_scale_down_rate_and_disabled() -> None:
    policies = [{"type": "Pods", "value": 2, "periodSeconds": 60},
                {"type": "Percent", "value": 10, "periodSeconds": 60}]  # fmt: skip
    b = Behavior.from_mapping(
        {"scaleDown": {"stabilizationWindowSeconds": 0, "tolerance": 0, "policies": policies}}
    )
    # from 20: Pods allows 18, Percent allows floor(18.0) = 18; Max picks the most change: 18
    result = apply_behavior(b, 5, 20, 1000.0, ScaleHistory())
    assert result.replicas == 18 and result.effects[-1].name == "behavior_scale_down_rate"
    # one pod removed 30 s ago: the period started at 21 -> Pods 19, Percent floor(18.9) = 18 -> 18
    assert apply_behavior(b, 5, 20, 1000.0, ScaleHistory(changes=[(970.0, -1)])).replicas == 18
    frozen = Behavior.from_mapping({"scaleDown": {"selectPolicy": "Disabled", "tolerance": 0}})
    assert apply_behavior(frozen, 5, 20, 1000.0, ScaleHistory()).replicas == 20


def test_stabilization_windows_hold_the_answer() -> None:
    b = Behavior.from_mapping({"scaleUp": {"stabilizationWindowSeconds": 60, "tolerance": 0},
                               "scaleDown": {"tolerance": 0}})  # fmt: skip
    history = ScaleHistory(recommendations=[(650.0, 12), (900.0, 9), (980.0, 6)])
    # down to 4: 12 has left the 300 s window; the highest recommendation in it is 9 -> 9
    assert apply_behavior(b, 4, 10, 1000.0, history).replicas == 9
    # with 12 still inside the window the answer is held at the current 10 (<= 12)
    assert apply_behavior(b, 4, 10, 900.0, history).replicas == 10
    # up to 14: the lowest of the last 60 s is 6 (< current): the answer stays at current 10
    assert apply_behavior(b, 14, 10, 1000.0, history).replicas == 10


def test_tolerance_ignores_small_changes() -> None:
    b = Behavior.from_mapping({})
    result = apply_behavior(b, 21, 20, 1000.0, ScaleHistory())
    assert result.replicas == 20 and result.effects[0].name == "behavior_tolerance"
    assert apply_behavior(Behavior.from_mapping(EXACT), 21, 20, 1000.0, ScaleHistory()).replicas == 21


def test_min_and_max_bound_the_rate_limits() -> None:
    b = Behavior.from_mapping(EXACT)
    assert apply_behavior(b, 50, 10, 0.0, ScaleHistory(), max_replicas=12).replicas == 12
    assert apply_behavior(b, 0, 10, 0.0, ScaleHistory(), min_replicas=2).replicas == 2


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"scaleUp": {"stabilizationWindowSeconds": -1}}, "scaleUp.stabilizationWindowSeconds"),
        ({"scaleUp": {"stabilizationWindowSeconds": True}}, "scaleUp.stabilizationWindowSeconds"),
        ({"scaleDown": {"selectPolicy": "Sometimes"}}, "scaleDown.selectPolicy"),
        (
            {"scaleDown": {"policies": [{"type": "Nodes", "value": 1, "periodSeconds": 15}]}},
            "policies[0].type",
        ),
        (
            {"scaleDown": {"policies": [{"type": "Pods", "value": "1", "periodSeconds": 15}]}},
            "policies[0].value",
        ),
        ({"scaleUp": {"tolerance": 2}}, "scaleUp.tolerance"),
        ({"scaleSideways": {}}, "scaleSideways"),
    ],
)
def test_bad_behavior_names_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPolicyInput, match=field.replace("[", r"\[").replace("]", r"\]")):
        Behavior.from_mapping(raw)


def test_hpa_metric_arithmetic() -> None:
    """KEDA answers `replicas` with targetValue 1 (AverageValue): the HPA asks ceil(N / 1) = N, except
    within its tolerance of the current count, where it does nothing."""
    assert hpa_replicas_for_average_value(5, 1.0, 2) == 5
    assert hpa_replicas_for_average_value(3, 1.0, 5) == 3
    assert hpa_replicas_for_average_value(21, 1.0, 20) == 20  # 5 % change: inside the 10 % tolerance
    assert hpa_replicas_for_average_value(21, 1.0, 20, tolerance=0.0) == 21
