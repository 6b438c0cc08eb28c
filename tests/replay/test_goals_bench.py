"""The replay goals bench's comparison with HPA retuned: a policy is judged against HPA's own curve."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "replay_goals.py"


@pytest.fixture(scope="module")
def goals() -> ModuleType:
    spec = importlib.util.spec_from_file_location("replay_goals", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(hours: float, rate: float, epsilon: float | None = None) -> dict[str, float | None]:
    return {"replica_hours": hours, "sla_violation_rate": rate, "epsilon": epsilon}


RUNS = {
    "static-peak": run(400.0, 0.0),
    "oracle": run(150.0, 0.0),
    "hpa": run(200.0, 0.10),  # target 0.8
    "hpa target=0.7": run(240.0, 0.06),
    "hpa target=0.9": run(160.0, 0.30),
    "bayesian ε=0.05": run(220.0, 0.05, 0.05),  # HPA's curve at 220 h: 0.08 -> 3 points better
    "bayesian ε=0.2": run(180.0, 0.25, 0.2),  # HPA's curve at 180 h: 0.20 -> 5 points worse
    "bayesian ε=0.5": run(150.0, 0.40, 0.5),  # cheaper than any HPA target: no comparison
}


def test_gap_is_read_off_hpas_curve_at_the_same_cost(goals: ModuleType) -> None:
    assert goals.hpa_curve(RUNS) == ([160.0, 200.0, 240.0], [0.30, 0.10, 0.06])
    assert goals.frontier_gap(RUNS, RUNS["bayesian ε=0.05"]) == pytest.approx(-0.03)
    assert goals.frontier_gap(RUNS, RUNS["bayesian ε=0.2"]) == pytest.approx(0.05)
    assert goals.frontier_gap(RUNS, RUNS["bayesian ε=0.5"]) is None


def test_verdict_separates_beating_hpa_from_beating_its_curve(goals: ModuleType) -> None:
    v = goals.verdict(RUNS)
    assert v["below_hpa_curve_at_epsilon"] == [0.05]
    # ε=0.05 costs more than HPA at 0.8, so the iso-cost test does not count it
    assert v["beats_hpa_at_epsilon"] == [] and not v["goal_met"]
    assert v["hpa_curve_gap_by_epsilon"]["0.5"] is None


def test_seeds_are_averaged_and_compared_in_pairs(goals: ModuleType) -> None:
    """Over seeds a run reports means and spreads; the paired count compares each seed with HPA's run on
    the same seed (same interference and failures)."""
    metrics = {m: 0.0 for m in goals.METRICS}
    hpa = goals.over_seeds([metrics | {"replica_hours": h, "sla_violation_rate": v} for h, v in
                            [(100.0, 0.05), (110.0, 0.04), (90.0, 0.06)]])  # fmt: skip
    bayes = goals.over_seeds([metrics | {"replica_hours": h, "sla_violation_rate": v} for h, v in
                              [(95.0, 0.03), (112.0, 0.02), (90.0, 0.04)]])  # fmt: skip
    assert bayes["replica_hours"] == pytest.approx(99.0)
    assert bayes["sla_violation_rate_sd"] == pytest.approx(0.01)
    # seed 1 costs more than HPA's seed 1: only seeds 0 and 2 count
    assert goals.paired_wins(hpa, bayes) == 2
    assert goals.paired_wins(goals.over_seeds([metrics]), goals.over_seeds([metrics])) is None
