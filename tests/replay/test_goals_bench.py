"""The replay goals bench judges a policy against HPA's own curve (its target sweep), not one HPA run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "replay_goals.py"


@pytest.fixture(scope="module")
def goals() -> ModuleType:
    spec = importlib.util.spec_from_file_location("replay_goals", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["replay_goals"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run(hours: float, late: float) -> dict[str, float]:
    return {"replica_hours": hours, "sla_violation_rate": late}


def runs(bayes: dict[str, float]) -> dict[str, dict[str, float]]:
    return {
        "static-peak": run(400.0, 0.0),
        "oracle": run(150.0, 0.005),
        "hpa u=0.7": run(240.0, 0.06),
        "hpa u=0.8": run(200.0, 0.10),
        "hpa u=0.9": run(160.0, 0.30),
        "bayesian": bayes,
        "bayesian cold": run(200.0, 0.05),
        "hpa cold": run(205.0, 0.12),
    }


def test_hpas_curve_is_read_both_ways(goals: ModuleType) -> None:
    xs, ys = goals.hpa_curve(runs(run(220.0, 0.05)))
    assert xs.tolist() == [160.0, 200.0, 240.0] and ys.tolist() == [0.30, 0.10, 0.06]
    assert goals.late_on_curve(xs, ys, 220.0) == pytest.approx(0.08)
    assert goals.late_on_curve(xs, ys, 100.0) is None
    assert goals.hours_on_curve(xs, ys, 0.10) == pytest.approx(200.0)
    assert goals.hours_on_curve(xs, ys, 0.20) == pytest.approx(180.0)
    assert goals.hours_on_curve(xs, ys, 0.01) is None


def test_verdict_needs_a_clear_margin_below_the_curve(goals: ModuleType) -> None:
    better = goals.verdict(runs(run(220.0, 0.05)), takeover=False)  # 0.05 <= 0.8 x 0.08
    assert better["curve"] and better["static"] and better["cold"] is None  # the start is not scored
    assert goals.verdict(runs(run(220.0, 0.05)), takeover=True)["cold"]
    close = goals.verdict(runs(run(220.0, 0.075)), takeover=False)  # within 20 % of the curve
    assert not close["curve"]
    cheaper = goals.verdict(runs(run(175.0, 0.20)), takeover=False)  # curve needs 180 h: < 10 % less
    assert not cheaper["curve"]
    assert goals.verdict(runs(run(160.0, 0.20)), takeover=False)["curve"]  # 11 % below 180 h


def test_budget_takeover_and_static_goals(goals: ModuleType) -> None:
    v = goals.verdict(runs(run(180.0, 0.009)), takeover=True)
    assert v["oracle_meets_budget"] and v["budget"]  # <= 1 % late within 1.25 x 150 h
    assert v["takeover"] is True  # cheaper than static peak, within a point of its lateness, below HPA's
    assert goals.verdict(runs(run(180.0, 0.02)), takeover=True)["takeover"] is False  # 2 points > static
    assert goals.verdict(runs(run(180.0, 0.02)), takeover=False)["takeover"] is None  # not a takeover trace
    assert goals.verdict(runs(run(190.0, 0.009)), takeover=False)["budget"] is False  # > 1.25 x oracle
    dominated = goals.verdict(runs(run(450.0, 0.01)), takeover=False)
    assert not dominated["static"]
    block = {"verdict": v}
    assert goals.tally([block])["budget"] == (1, 1)
    assert np.isclose(goals.BUDGET, 0.01)
