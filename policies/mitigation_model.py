"""Per-event causal effect of each mitigation action on downtime, estimated from logged history.

Double ML + causal forest (econml `CausalForestDML`, discrete multi-valued treatment): LightGBM nuisance
models residualise downtime and the logged action on the event's features (removing the legacy rule's
confounding), then a causal forest fits theta_a(x) = E[downtime(a) - downtime(reference) | x] with
honest bootstrap-of-little-bags intervals. A separate LightGBM outcome model m(x) = E[downtime | x] and
propensity model p_a(x) give the level: E[downtime(ref) | x] = m(x) - sum_a p_a(x) theta_a(x) (the DML
identity), so expected downtime of a is that plus theta_a(x). Features are the event's signals and
numeric context (training medians fill gaps) plus one-hot kind, severity and labelled context; the
encoding is fitted on training data and travels with the model.
"""

from __future__ import annotations

import pickle
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from econml.dml import CausalForestDML
from lightgbm import LGBMClassifier, LGBMRegressor

from policies.mitigation_types import (
    ACTIONS,
    HARD_FAULT_KINDS,
    REFERENCE_ACTION,
    NodeEvent,
    NodeEventRecord,
)
from policies.types import InvalidPolicyInput, PolicyError

ARTIFACT_FORMAT = "foresight.mitigation_model/1"


class InsufficientHistory(InvalidPolicyInput):
    """Too few usable events (overall or for some action) to fit the causal model."""

    code = "insufficient_history"


class ModelNotFitted(PolicyError):
    """The model was used before `fit` (or its artifact is not a fitted model)."""

    code = "model_not_fitted"


@dataclass
class FeatureEncoder:
    """Event -> feature row. Numeric: signals and numeric context (missing -> training median).
    One-hot: kind, severity and labelled context (unseen label -> all zeros)."""

    numeric: list[str] = field(default_factory=list)
    medians: list[float] = field(default_factory=list)
    categorical: dict[str, list[str]] = field(default_factory=dict)
    profile_keys: list[str] = field(default_factory=list)

    @staticmethod
    def _raw(event: NodeEvent) -> dict[str, float | str]:
        raw: dict[str, float | str] = {f"signal.{k}": v for k, v in event.signals.items()}
        raw.update({f"context.{k}": v for k, v in event.context.items()})
        raw["kind"], raw["severity"] = event.kind, event.severity
        return raw

    @classmethod
    def fit(cls, events: Sequence[NodeEvent]) -> FeatureEncoder:
        raws = [cls._raw(e) for e in events]
        keys = sorted({k for r in raws for k in r})
        labelled = {k for r in raws for k, v in r.items() if isinstance(v, str)}
        numeric = [k for k in keys if k not in labelled]
        medians = [float(np.median([float(r[k]) for r in raws if k in r])) for k in numeric]
        categorical = {k: sorted({str(r[k]) for r in raws if k in r}) for k in keys if k in labelled}
        profile = [k for k in categorical if k.startswith("context.")]
        return cls(numeric, medians, categorical, profile)

    @property
    def names(self) -> list[str]:
        return self.numeric + [f"{k}={level}" for k, levels in self.categorical.items() for level in levels]

    def transform(self, events: Sequence[NodeEvent]) -> np.ndarray:
        out = np.zeros((len(events), len(self.names)))
        offsets, start = {}, len(self.numeric)
        for key, levels in self.categorical.items():
            offsets[key] = {level: start + i for i, level in enumerate(levels)}
            start += len(levels)
        for row, event in enumerate(events):
            raw = self._raw(event)
            for col, (key, median) in enumerate(zip(self.numeric, self.medians, strict=True)):
                value = raw.get(key)
                out[row, col] = float(value) if isinstance(value, int | float) else median
            for key, index in offsets.items():
                hit = index.get(str(raw[key])) if key in raw else None
                if hit is not None:
                    out[row, hit] = 1.0
        return out

    def profile(self, event: NodeEvent) -> tuple[str, ...]:
        """The event's labelled context (e.g. hardware, workload): the cell its support is counted in."""
        raw = self._raw(event)
        return tuple(f"{k.removeprefix('context.')}={raw.get(k, '')}" for k in self.profile_keys)


@dataclass(frozen=True)
class ActionEstimates:
    """Estimates for n events x the model's actions: expected downtime (minutes), effect vs the per-event
    comparison action with its (1 - alpha) interval, propensity of each action under the logging policy,
    and support (past events with the same labelled-context profile)."""

    actions: tuple[str, ...]
    expected: np.ndarray
    effect: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    propensity: np.ndarray
    support: np.ndarray
    profiles: list[tuple[str, ...]]
    alpha: float


def _lgbm_params(n_estimators: int, seed: int) -> dict[str, Any]:
    return {
        "n_estimators": n_estimators,
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_child_samples": 20,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.9,
        "random_state": seed,
        "num_threads": 1,
        "verbose": -1,
    }


class MitigationModel:
    """Per-action effect on downtime vs `reference` (double ML + causal forest), fitted on past events."""

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        min_samples_leaf: int = 10,
        nuisance_estimators: int = 150,
        cv: int = 2,
        min_events: int = 200,
        min_per_action: int = 20,
    ) -> None:
        if n_estimators < 4 or n_estimators % 4:
            raise InvalidPolicyInput(f"n_estimators must be a positive multiple of 4, got {n_estimators}")
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.nuisance_estimators = nuisance_estimators
        self.cv = cv
        self.min_events = min_events
        self.min_per_action = min_per_action
        self.actions: tuple[str, ...] = ()
        self.encoder: FeatureEncoder | None = None
        self._forest: CausalForestDML | None = None
        self._outcome: LGBMRegressor | None = None
        self._propensity: LGBMClassifier | None = None
        self._support: Counter[tuple[str, ...]] = Counter()
        self._description: dict[str, Any] = {}

    @property
    def fitted(self) -> bool:
        return self._forest is not None

    @property
    def reference(self) -> str:
        return self.actions[0] if self.actions else REFERENCE_ACTION

    def fit(
        self,
        records: Iterable[NodeEventRecord],
        *,
        actions: Sequence[str] | None = None,
        reference: str = REFERENCE_ACTION,
        seed: int = 0,
        exclude_kinds: Sequence[str] = HARD_FAULT_KINDS,
    ) -> MitigationModel:
        """Fit on records with an action and a downtime; hard faults (override territory) and actions
        outside `actions` are skipped and counted in `describe()["dropped"]`."""
        names = tuple(actions) if actions is not None else tuple(a.name for a in ACTIONS)
        if reference not in names or len(set(names)) != len(names) or len(names) < 2:
            raise InvalidPolicyInput(f"actions must be >= 2 distinct names including {reference!r}: {names}")
        self.actions = (reference, *[a for a in names if a != reference])
        started = time.perf_counter()
        kept, dropped = self._usable(records, set(exclude_kinds))
        counts = Counter(r.action for r in kept)
        short = {a: counts.get(a, 0) for a in self.actions if counts.get(a, 0) < self.min_per_action}
        if len(kept) < self.min_events or short:
            raise InsufficientHistory(
                f"the causal mitigation model needs at least {self.min_events} past events with an action "
                f"and a downtime, and at least {self.min_per_action} per action; got {len(kept)} usable "
                f"events (per action: {dict(counts)}; too few: {short}). Collect more history, or fit "
                f"on fewer actions."
            )
        events = [r.event for r in kept]
        self.encoder = FeatureEncoder.fit(events)
        x = self.encoder.transform(events)
        code = {a: i for i, a in enumerate(self.actions)}
        t = np.array([code[str(r.action)] for r in kept])
        y = np.array([float(r.downtime_minutes or 0.0) for r in kept])
        params = _lgbm_params(self.nuisance_estimators, seed)
        self._forest = CausalForestDML(
            model_y=LGBMRegressor(**params),
            model_t=LGBMClassifier(**params),
            discrete_treatment=True,
            categories=list(range(len(self.actions))),
            cv=self.cv,
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            inference=True,
            n_jobs=1,
            random_state=seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self._forest.fit(y, t, X=x)
        self._outcome = LGBMRegressor(**params).fit(x, y)
        self._propensity = LGBMClassifier(**params).fit(x, t)
        self._support = Counter(self.encoder.profile(e) for e in events)
        self._description = self._summarise(x, y, t, counts, dropped, time.perf_counter() - started)
        return self

    def _usable(
        self, records: Iterable[NodeEventRecord], exclude: set[str]
    ) -> tuple[list[NodeEventRecord], dict[str, int]]:
        kept: list[NodeEventRecord] = []
        dropped: Counter[str] = Counter()
        for record in records:
            if not record.has_outcome:
                dropped["no_outcome"] += 1
            elif record.kind in exclude:
                dropped["hard_fault"] += 1
            elif record.action not in self.actions:
                dropped[f"unknown_action:{record.action}"] += 1
            else:
                kept.append(record)
        return kept, dict(dropped)

    def _summarise(
        self,
        x: np.ndarray,
        y: np.ndarray,
        t: np.ndarray,
        counts: Counter[Any],
        dropped: dict[str, int],
        secs: float,
    ) -> dict[str, Any]:
        assert self._forest is not None and self._outcome is not None and self._propensity is not None
        forest = self._forest
        ate = {}
        for k, action in enumerate(self.actions[1:], start=1):
            low, high = forest.ate_interval(x, T0=0, T1=k, alpha=0.1)
            ate[action] = {
                "effect": float(forest.ate(x, T0=0, T1=k)),
                "lower": float(low),
                "upper": float(high),
            }
        logged = np.asarray(self._propensity.predict_proba(x))[np.arange(len(t)), t]
        return {
            "n_events": len(y),
            "actions": list(self.actions),
            "reference": self.reference,
            "per_action": {a: int(counts.get(a, 0)) for a in self.actions},
            "dropped": dropped,
            "features": self.encoder.names if self.encoder else [],
            "params": {
                "n_estimators": self.n_estimators,
                "min_samples_leaf": self.min_samples_leaf,
                "nuisance_estimators": self.nuisance_estimators,
                "cv": self.cv,
            },
            "metrics": {
                "nuisance_r2_downtime": float(np.mean(forest.nuisance_scores_y)),
                "nuisance_accuracy_action": float(np.mean(forest.nuisance_scores_t)),
                "outcome_r2_in_sample": float(1 - np.mean((y - self._outcome.predict(x)) ** 2) / np.var(y)),
                "propensity_of_logged_action_p05": float(np.quantile(logged, 0.05)),
                "mean_downtime": float(y.mean()),
            },
            "ate_vs_reference_90": ate,
            "fit_seconds": round(secs, 3),
        }

    def describe(self) -> dict[str, Any]:
        """What the model was fitted on and how well (plain JSON); empty before `fit`."""
        return dict(self._description)

    def _require(self) -> tuple[CausalForestDML, FeatureEncoder]:
        if self._forest is None or self.encoder is None:
            raise ModelNotFitted("the mitigation model is not fitted: call fit(records) first")
        return self._forest, self.encoder

    def _codes(self, actions: Sequence[str], what: str) -> np.ndarray:
        unknown = sorted(set(actions) - set(self.actions))
        if unknown:
            raise InvalidPolicyInput(f"{what} {unknown} not among the model's actions {list(self.actions)}")
        return np.array([self.actions.index(a) for a in actions])

    def effect_interval(
        self, events: Sequence[NodeEvent], action: str, versus: Sequence[str] | str, alpha: float = 0.1
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Effect of `action` vs `versus` (one action or one per event): (effect, lower, upper) minutes."""
        forest, encoder = self._require()
        versus_list = [versus] * len(events) if isinstance(versus, str) else list(versus)
        x = encoder.transform(events)
        t0 = self._codes(versus_list, "versus actions")
        t1 = np.full(len(events), self._codes([action], "action")[0])
        effect = np.asarray(forest.effect(x, T0=t0, T1=t1), dtype=float).reshape(-1)
        low, high = forest.effect_interval(x, T0=t0, T1=t1, alpha=alpha)
        return effect, np.asarray(low, dtype=float).reshape(-1), np.asarray(high, dtype=float).reshape(-1)

    def estimate(
        self, events: Sequence[NodeEvent], versus: Sequence[str], alpha: float = 0.1
    ) -> ActionEstimates:
        """Every action's expected downtime and effect interval vs `versus[i]` (e.g. the legacy action)."""
        forest, encoder = self._require()
        assert self._outcome is not None and self._propensity is not None
        if len(versus) != len(events):
            raise InvalidPolicyInput(f"versus has {len(versus)} actions for {len(events)} events")
        x = encoder.transform(events)
        t0 = self._codes(list(versus), "versus actions")
        theta = np.asarray(forest.const_marginal_effect(x), dtype=float).reshape(len(events), -1)
        theta = np.hstack([np.zeros((len(events), 1)), theta])
        propensity = np.asarray(self._propensity.predict_proba(x), dtype=float)
        base = np.asarray(self._outcome.predict(x), dtype=float) - (propensity * theta).sum(axis=1)
        k = len(self.actions)
        effect, lower, upper = (np.zeros((len(events), k)) for _ in range(3))
        for j in range(k):
            t1 = np.full(len(events), j)
            effect[:, j] = theta[:, j] - theta[np.arange(len(events)), t0]
            low, high = forest.effect_interval(x, T0=t0, T1=t1, alpha=alpha)
            lower[:, j], upper[:, j] = np.reshape(low, -1), np.reshape(high, -1)
        profiles = [encoder.profile(e) for e in events]
        support = np.array([self._support.get(p, 0) for p in profiles])
        return ActionEstimates(
            self.actions, base[:, None] + theta, effect, lower, upper, propensity, support, profiles, alpha
        )

    def to_bytes(self) -> bytes:
        """The fitted model as bytes for the `models` table (pickle: load only artifacts you wrote)."""
        self._require()
        return pickle.dumps((ARTIFACT_FORMAT, self), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, blob: bytes) -> MitigationModel:
        """Load what `to_bytes` wrote; a clear error if the bytes are something else."""
        try:
            tag, model = pickle.loads(blob)
        except Exception as exc:
            raise ModelNotFitted(f"not a mitigation model artifact: {exc}") from None
        if tag != ARTIFACT_FORMAT or not isinstance(model, cls) or not model.fitted:
            raise ModelNotFitted(f"not a fitted mitigation model artifact (format {tag!r})")
        return model
