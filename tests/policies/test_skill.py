"""Skill-aware control: the forecast's live skill against persistence decides how far the policy acts
ahead of the load, and the decision says which controller it followed."""

from __future__ import annotations

import numpy as np
import pytest

from policies.guardrails import StepLimit
from policies.scaling import BayesianScalingPolicy
from policies.skill import SkillTracker, persistence_forecast, proactive_weight
from tests.policies.test_scaling import normal_forecast, scaling_input

LEVELS = np.array([0.1, 0.5, 0.9])


def run_tracker(error: float, n: int = 200, seed: int = 0) -> SkillTracker:
    """A random-walk load; the forecast is the true next value shifted by `error` (with a spread)."""
    rng = np.random.default_rng(seed)
    load = 100.0 + np.cumsum(rng.normal(0.0, 5.0, n + 2))[:, None]
    tracker = SkillTracker(1)
    for k in range(1, n):
        tracker.update(load[:k])
        centre = load[k, 0] + error
        tracker.record(k, LEVELS, np.array([[[centre - 3.0, centre, centre + 3.0]]]), load[k - 1])
    tracker.update(load[:n])
    return tracker


def test_a_forecast_that_sees_ahead_earns_the_proactive_weight() -> None:
    good = run_tracker(error=0.0).ratio()[0]
    bad = run_tracker(error=15.0).ratio()[0]
    assert good < 0.5 < 1.0 < bad
    assert proactive_weight(good) > 0.8 > 0.2 > proactive_weight(bad)
    assert proactive_weight(1.0) == pytest.approx(0.5)
    assert proactive_weight(None) == 1.0  # not tracked: the forecast alone, as before


def test_no_outcomes_means_no_opinion() -> None:
    tracker = SkillTracker(3)
    assert tracker.ratio().tolist() == [1.0, 1.0, 1.0]
    one = run_tracker(error=0.0, n=3)  # two outcomes: shrunk towards 1 by the prior
    assert 0.5 < one.ratio()[0] < 1.0


def test_persistence_needs_enough_changes_to_certify_epsilon() -> None:
    assert persistence_forecast((40.0,) * 10, 1, 0.05) is None  # 19 changes certify the 95 % level
    f = persistence_forecast(tuple(40.0 + np.arange(30) % 3), 2, 0.05)
    assert f is not None and f.steps == 2
    assert f.quantile(0.95)[1] >= f.quantile(0.95)[0] >= 41.0  # last (41) plus the upward changes


def test_the_decision_follows_the_skill_and_says_so() -> None:
    """The forecast says 80 while the load has sat at 40: trusted (ratio 0.2) the policy sizes for
    80; distrusted (ratio 5) it sizes for the observed 40; evidence names the controller."""
    observed = tuple(40.0 + (np.arange(40) % 2))
    policy = BayesianScalingPolicy(step_limit=StepLimit(max_up=100), reactive_floor=False)

    def decide(ratio: float | None):  # type: ignore[no-untyped-def]
        inputs = scaling_input(load_forecast=normal_forecast(80.0, 2.0), observed_load=observed)
        return policy.decide(inputs.__class__(**{**inputs.__dict__, "forecast_skill": ratio}))

    trusted, distrusted, untracked = decide(0.2), decide(5.0), decide(None)
    assert trusted.details["control"] == "proactive"
    assert distrusted.details["control"] == "reactive"
    assert untracked.details["control"].startswith("proactive: forecast skill not tracked")
    assert trusted.details["wanted_replicas"] >= 11 > 7 >= distrusted.details["wanted_replicas"]
    assert distrusted.details["reactive_replicas"] == distrusted.details["wanted_replicas"] or (
        distrusted.details["proactive_weight"] > 0
    )
    assert trusted.details["forecast_skill"] == 0.2
