"""The flattened causal forest gives econml's own numbers: the same per-event effects and the same
standard errors of any action pair, for one event and for many, with three and five actions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from econml.dml import CausalForestDML
from lightgbm import LGBMClassifier, LGBMRegressor

from policies.mitigation_forest import FlatForest


def _forest(k: int, seed: int) -> tuple[CausalForestDML, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 900
    x = rng.normal(size=(n, 6))
    t = np.where(rng.random(n) < 0.6, (x[:, 1] > 0).astype(int) * (k - 1), rng.integers(0, k, n))
    y = 10 + 3 * x[:, 0] * (t == 1) - 2 * (t == k - 1) * (x[:, 2] > 0) + rng.gamma(3, 1, n)
    params = {"n_estimators": 10, "verbose": -1, "random_state": seed}
    forest = CausalForestDML(
        model_y=LGBMRegressor(**params), model_t=LGBMClassifier(**params), discrete_treatment=True,
        categories=list(range(k)), cv=2, n_estimators=16, min_samples_leaf=5, inference=True, n_jobs=1,
        random_state=seed,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forest.fit(y, t, X=x)
    return forest, rng.normal(size=(700, 6))


@pytest.mark.parametrize("k", [3, 5])
def test_effects_and_standard_errors_equal_econml(k: int) -> None:
    forest, x = _forest(k, seed=k)
    flat = FlatForest.of(forest)
    expected = np.asarray(forest.const_marginal_effect(x), dtype=float).reshape(len(x), -1)
    np.testing.assert_allclose(flat.effects(x), expected, rtol=1e-8, atol=1e-10)
    rng = np.random.default_rng(0)
    t0, t1 = rng.integers(0, k, len(x)), rng.integers(0, k, len(x))
    differs = t0 != t1
    theirs = forest.effect_inference(x[differs], T0=t0[differs], T1=t1[differs]).stderr
    ours = flat.stderr(x[differs], t0[differs], t1[differs])
    np.testing.assert_allclose(ours, np.asarray(theirs, dtype=float).reshape(-1), rtol=1e-7, atol=1e-10)
    one = flat.stderr(x[:1], np.array([0]), np.array([k - 1]))  # the single-event path of a request
    single = forest.effect_inference(x[:1], T0=np.array([0]), T1=np.array([k - 1])).stderr
    np.testing.assert_allclose(one, np.asarray(single, dtype=float).reshape(-1), rtol=1e-7)


def test_a_forest_without_inference_is_refused() -> None:
    with pytest.raises(ValueError, match="CausalForestDML"):
        FlatForest.of(object())
