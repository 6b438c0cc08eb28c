"""Four estimators of every action's expected downtime from logged (confounded) history, fitted on a
training fold and predicting another: what `mitigation_model` cross-fits and compares by off-policy value.

All return an (n, k) array of expected downtime per action (column 0 the reference action), so the choice
is the argmin and gains can be read relative to any action:

- `t_learner`: one LightGBM regressor per action (mu_a(x)); also the outcome nuisance of the DR scores and
  the level the effect-only learners are added to;
- `x_learner`: Kuenzel et al.'s X-learner on the T-learner's first stage, imputed effects regressed per
  arm and blended by the propensity;
- `dr_learner`: econml `DRLearner` (doubly-robust pseudo-outcomes, LightGBM final stage);
- `causal_forest`: econml `CausalForestDML` (double ML with a causal forest; the only one with per-event
  standard errors, used by the interval-level knob).

Sizes scale with the data (leaf sizes, a subsample for the forest) so 20,000 events fit in seconds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from econml.dml import CausalForestDML
from econml.dr import DRLearner
from lightgbm import LGBMClassifier, LGBMRegressor

from policies.mitigation_forest import FlatForest

LEARNERS: tuple[str, ...] = ("t_learner", "x_learner", "dr_learner", "causal_forest")
FOREST_MAX_SAMPLES = 4000
"""The causal forest is fitted on at most this many events of a fold (a seeded subsample): its cost grows
faster than the boosted learners' and its estimate settles well before."""


def lgbm_params(n: int, n_estimators: int, seed: int) -> dict[str, Any]:
    """LightGBM settings scaled to the training size: leaves hold ~1 % of the events (at least 10)."""
    return {
        "n_estimators": n_estimators,
        "learning_rate": 0.08,
        "num_leaves": 15,
        "min_child_samples": max(10, n // 100),
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.9,
        "random_state": seed,
        "num_threads": 1,
        "verbose": -1,
    }


def regress(model: LGBMRegressor, x: np.ndarray) -> np.ndarray:
    """Predict through the booster: the scikit-learn wrapper's per-call checks cost more than a
    one-event prediction itself (what every recommendation makes)."""
    return np.asarray(model.booster_.predict(x, num_threads=1), dtype=float).reshape(len(x))


def classify(model: LGBMClassifier, x: np.ndarray) -> np.ndarray:
    """Class probabilities through the booster (columns in `model.classes_` order)."""
    raw = np.asarray(model.booster_.predict(x, num_threads=1), dtype=float)
    return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw


def propensity_model(x: np.ndarray, t: np.ndarray, k: int, n_estimators: int, seed: int) -> Propensity:
    """P(logged action | x) for all k actions (columns in action order even if a fold misses one)."""
    params = lgbm_params(len(t), n_estimators, seed)
    return Propensity(LGBMClassifier(**params).fit(x, t), k)


@dataclass
class Propensity:
    model: LGBMClassifier
    k: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), self.k))
        out[:, np.asarray(self.model.classes_, dtype=int)] = classify(self.model, x)
        return out


@dataclass
class TLearner:
    """One regressor per action; an action absent from the fold predicts the fold's mean downtime."""

    models: list[LGBMRegressor | None]
    fill: float

    @classmethod
    def fit(cls, x: np.ndarray, t: np.ndarray, y: np.ndarray, k: int, n_est: int, seed: int) -> TLearner:
        models: list[LGBMRegressor | None] = []
        for a in range(k):
            rows = t == a
            if rows.sum() < 5:
                models.append(None)
                continue
            models.append(LGBMRegressor(**lgbm_params(int(rows.sum()), n_est, seed)).fit(x[rows], y[rows]))
        return cls(models, float(y.mean()))

    def predict(self, x: np.ndarray) -> np.ndarray:
        cols = [regress(m, x) if m is not None else np.full(len(x), self.fill) for m in self.models]
        return np.column_stack(cols)


@dataclass
class XLearner:
    """Effects vs the reference from imputed treatment effects, blended by the propensity, on the
    T-learner's reference level."""

    base: TLearner
    propensity: Propensity
    treated: list[LGBMRegressor | None] = field(default_factory=list)
    control: list[LGBMRegressor | None] = field(default_factory=list)

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        t: np.ndarray,
        y: np.ndarray,
        base: TLearner,
        prop: Propensity,
        n_est: int,
        seed: int,
    ) -> XLearner:
        mu = base.predict(x)
        out = cls(base, prop, [None], [None])
        ref = t == 0
        for a in range(1, base.models.__len__()):
            arm = t == a
            if arm.sum() < 5 or ref.sum() < 5:
                out.treated.append(None)
                out.control.append(None)
                continue
            d1 = y[arm] - mu[arm, 0]
            d0 = mu[ref, a] - y[ref]
            out.treated.append(LGBMRegressor(**lgbm_params(int(arm.sum()), n_est, seed)).fit(x[arm], d1))
            out.control.append(LGBMRegressor(**lgbm_params(int(ref.sum()), n_est, seed)).fit(x[ref], d0))
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        mu = self.base.predict(x)
        p = self.propensity.predict(x)
        out = np.zeros_like(mu)
        out[:, 0] = mu[:, 0]
        for a in range(1, mu.shape[1]):
            m1, m0 = self.treated[a], self.control[a]
            if m1 is None or m0 is None:
                out[:, a] = mu[:, a]
                continue
            g = p[:, a] / np.clip(p[:, a] + p[:, 0], 1e-9, None)
            tau = g * regress(m0, x) + (1.0 - g) * regress(m1, x)
            out[:, a] = mu[:, 0] + tau
        return out


@dataclass
class EffectLearner:
    """An econml estimator of effects vs the reference (DRLearner or CausalForestDML) on the T-learner's
    reference level. Both predict econml's numbers without econml's per-call (forest: per-tree) checks:
    the DR-learner through its final boosters, the forest through `FlatForest` (built on first use, not
    stored in the artifact)."""

    base: TLearner
    estimator: Any
    k: int
    _flat: FlatForest | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_flat": None}

    def flat(self) -> FlatForest | None:
        """The forest as flat arrays (None for the DR-learner)."""
        if self._flat is None and isinstance(self.estimator, CausalForestDML):
            self._flat = FlatForest.of(self.estimator)
        return self._flat

    def effects(self, x: np.ndarray) -> np.ndarray:
        finals = getattr(self.estimator, "fitted_models_final", None)
        flat = self.flat()
        if (
            isinstance(self.estimator, DRLearner)
            and finals
            and all(isinstance(m, LGBMRegressor) for m in finals)
        ):
            theta = np.column_stack([regress(m, x) for m in finals])
        elif flat is not None:
            theta = flat.effects(x)
        else:
            theta = np.asarray(self.estimator.const_marginal_effect(x), dtype=float).reshape(len(x), -1)
        return np.hstack([np.zeros((len(x), 1)), theta])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.base.predict(x)[:, [0]] + self.effects(x)

    def stderr(self, x: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """Standard error of effect(t1 - t0) per event (forest only; 0 where t0 == t1)."""
        same = t0 == t1
        se = np.zeros(len(x))
        if (~same).any():
            flat = self.flat()
            if flat is not None:
                se[~same] = flat.stderr(x[~same], t0[~same], t1[~same])
            else:
                inference = self.estimator.effect_inference(x[~same], T0=t0[~same], T1=t1[~same])
                se[~same] = np.asarray(inference.stderr, dtype=float).reshape(-1)
        return se


def fit_dr_learner(
    x: np.ndarray, t: np.ndarray, y: np.ndarray, base: TLearner, k: int, n_est: int, seed: int
) -> EffectLearner:
    params = lgbm_params(len(y), n_est, seed)
    learner = DRLearner(
        model_propensity=LGBMClassifier(**params),
        model_regression=LGBMRegressor(**params),
        model_final=LGBMRegressor(**params),
        categories=list(range(k)),
        cv=2,
        min_propensity=0.01,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learner.fit(y, t, X=x)
    return EffectLearner(base, learner, k)


def fit_causal_forest(
    x: np.ndarray, t: np.ndarray, y: np.ndarray, base: TLearner, k: int, n_est: int, trees: int, seed: int
) -> EffectLearner:
    rng = np.random.default_rng(seed)
    rows = np.arange(len(y))
    if len(rows) > FOREST_MAX_SAMPLES:
        rows = np.sort(rng.choice(rows, FOREST_MAX_SAMPLES, replace=False))
    params = lgbm_params(len(rows), n_est, seed)
    forest = CausalForestDML(
        model_y=LGBMRegressor(**params),
        model_t=LGBMClassifier(**params),
        discrete_treatment=True,
        categories=list(range(k)),
        cv=2,
        n_estimators=trees,
        min_samples_leaf=max(5, len(rows) // 400),
        inference=True,
        n_jobs=1,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forest.fit(y[rows], t[rows], X=x[rows])
    return EffectLearner(base, forest, k)


def fit_learner(
    name: str,
    x: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    base: TLearner,
    prop: Propensity,
    k: int,
    *,
    n_est: int,
    trees: int,
    seed: int,
) -> TLearner | XLearner | EffectLearner:
    """Fit learner `name` on one training fold (`base` and `prop` are that fold's T-learner and
    propensity model)."""
    if name == "t_learner":
        return base
    if name == "x_learner":
        return XLearner.fit(x, t, y, base, prop, n_est, seed)
    if name == "dr_learner":
        return fit_dr_learner(x, t, y, base, k, n_est, seed)
    if name == "causal_forest":
        return fit_causal_forest(x, t, y, base, k, n_est, trees, seed)
    raise ValueError(f"unknown learner {name!r}; known: {LEARNERS}")
