"""One event's causal-forest effects and standard error: the flattened forest
(`policies/mitigation_forest.py`) against econml's own `const_marginal_effect` + `effect_inference` on
the same fitted forest, in the same run — what every recommendation made with a selected causal forest
pays three times (one forest per cross-fitting fold). Also checks both give the same numbers.

    .venv/bin/python bench/mitigation_forest_speed.py [--events 200] [--trees 48] [--history 4000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from policies.mitigation_forest import FlatForest
from policies.mitigation_learners import TLearner, fit_causal_forest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--trees", type=int, default=48)
    parser.add_argument("--history", type=int, default=4000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    k, n = 4, args.history
    x = rng.normal(size=(n, 14))
    t = rng.integers(0, k, n)
    y = 30 + 5 * x[:, 0] * (t == 1) - 4 * (t == 3) * (x[:, 1] > 0) + rng.gamma(3, 3, n)
    base = TLearner.fit(x, t, y, k, 80, 0)
    forest = fit_causal_forest(x, t, y, base, k, 80, args.trees, 0).estimator
    flat = FlatForest.of(forest)
    asks = rng.normal(size=(args.events, 14))
    t0, t1 = np.array([0]), np.array([2])

    def econml(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        effect = np.asarray(forest.const_marginal_effect(row), dtype=float).reshape(1, -1)
        return effect, np.asarray(forest.effect_inference(row, T0=t0, T1=t1).stderr, dtype=float).ravel()

    def flattened(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return flat.effects(row), flat.stderr(row, t0, t1)

    def per_event(method: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> float:
        started = time.perf_counter()
        for i in range(args.events):
            method(asks[i : i + 1])
        return 1000 * (time.perf_counter() - started) / args.events

    reference, fast = per_event(econml), per_event(flattened)
    gaps = []
    for i in range(20):
        ours, theirs = flattened(asks[i : i + 1]), econml(asks[i : i + 1])
        for a, b in zip(ours, theirs, strict=True):
            gaps.append(float(np.max(np.abs(a.ravel() - b.ravel()) / (1e-12 + np.abs(b.ravel())))))
    worst = max(gaps)
    print(f"one {args.trees}-tree forest fitted on {n} events; load average {os.getloadavg()[0]:.2f}")
    print(f"econml     {reference:7.2f} ms per event (effects + stderr)")
    print(f"flattened  {fast:7.2f} ms per event ({reference / fast:.1f}x faster)")
    print(f"largest relative gap between the two over 20 events: {worst:.1e}")


if __name__ == "__main__":
    main()
