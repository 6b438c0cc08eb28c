"""Per-event expected downtime of each mitigation action, learned from the fleet's own logged history,
and the strictness that decides when to trust it — both chosen by off-policy evaluation on held-out
history.

`fit` cross-fits (K folds, every prediction is made by models that never saw the event): a propensity
model of the logged action (the fleet's practice: its most probable action is the fallback), a T-learner
(the DR outcome nuisance), and the candidate learners of `policies.mitigation_learners` (T-, X-, DR-learner,
causal forest). Each learner's choice, gated by each `Strictness` setting against the fallback, is scored
by its doubly-robust policy value on the held-out folds (`policies.mitigation_ope`); the setting with the
best estimated downtime whose 90 % lower bound still beats the logged policy is kept, else the fallback
decides everywhere. The deployed predictor is the average of the selected learner's K fold models.
Features are the event's signals and numeric context (training medians fill gaps) plus one-hot kind,
severity and labelled context; the encoding travels with the model.
"""

from __future__ import annotations

import pickle
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.mitigation_learners import (
    LEARNERS,
    Propensity,
    TLearner,
    fit_learner,
    propensity_model,
)
from policies.mitigation_ope import (
    GATE_CODES,
    Candidate,
    Saving,
    Strictness,
    dr_scores,
    gate,
    saving,
    select,
    strictness_grid,
)
from policies.mitigation_practice import DeclaredRule
from policies.mitigation_types import HARD_FAULT_KINDS, NodeEvent, NodeEventRecord
from policies.types import InvalidPolicyInput, PolicyError

ARTIFACT_FORMAT = "foresight.mitigation_model/2"


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
    presence: dict[str, float] = field(default_factory=dict)
    """Share of training events that carried each numeric feature (an event lacking a common one is
    outside what the model learned from)."""

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
        presence = {k: sum(k in r for r in raws) / len(raws) for k in numeric}
        return cls(numeric, medians, categorical, profile, presence)

    def missing(self, event: NodeEvent, common: float = 0.99) -> list[str]:
        """Numeric features nearly every training event had (share >= `common`) that `event` lacks."""
        raw = self._raw(event)
        return [k for k in self.numeric if self.presence.get(k, 1.0) >= common and k not in raw]

    def unseen(self, event: NodeEvent) -> list[str]:
        """Signals and numeric context of `event` the model never saw (ignored by it)."""
        raw = self._raw(event)
        known = set(self.numeric) | set(self.categorical)
        return sorted(k for k in raw if k not in known)

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
    """Estimates for n events x the model's actions: expected downtime (the history's units), the
    logging policy's propensity of each action, the standard error of the chosen action's effect vs the
    fallback (0 when the learner has none), and the labelled-context support (count and share)."""

    actions: tuple[str, ...]
    expected: np.ndarray
    propensity: np.ndarray
    stderr: np.ndarray | None
    support: np.ndarray
    share: np.ndarray
    profiles: list[tuple[str, ...]]


@dataclass(frozen=True)
class EventFeatures:
    """Feature rows of some events (the model's encoding) and the logging policy's propensities."""

    x: np.ndarray
    propensity: np.ndarray

    def rows(self, index: Sequence[int]) -> EventFeatures:
        return EventFeatures(self.x[list(index)], self.propensity[list(index)])


@dataclass
class _Fold:
    base: TLearner
    propensity: Propensity
    learner: Any


class MitigationModel:
    """What each action would cost on an event, learned from the fleet's history, with the learner and
    the strictness chosen by doubly-robust off-policy evaluation (see the module docstring)."""

    def __init__(
        self,
        *,
        n_estimators: int = 48,
        nuisance_estimators: int = 80,
        folds: int = 3,
        learners: Sequence[str] = LEARNERS,
        min_events: int = 200,
        min_per_action: int = 20,
    ) -> None:
        if n_estimators < 4 or n_estimators % 4:
            raise InvalidPolicyInput(f"n_estimators must be a positive multiple of 4, got {n_estimators}")
        unknown = sorted(set(learners) - set(LEARNERS))
        if unknown or not learners:
            raise InvalidPolicyInput(f"learners must be among {LEARNERS}, got {list(learners)}")
        if folds < 2:
            raise InvalidPolicyInput(f"folds must be >= 2, got {folds}")
        self.n_estimators = n_estimators
        self.nuisance_estimators = nuisance_estimators
        self.folds = folds
        self.learners = tuple(learners)
        self.min_events = min_events
        self.min_per_action = min_per_action
        self.actions: tuple[str, ...] = ()
        self.encoder: FeatureEncoder | None = None
        self.learner: str | None = None
        self.strictness: Strictness | None = None
        self.saving: Saving | None = None
        self.rule: DeclaredRule | None = None
        self._folds: list[_Fold] = []
        self._support: Counter[tuple[str, ...]] = Counter()
        self._n = 0
        self._description: dict[str, Any] = {}

    @property
    def fitted(self) -> bool:
        return bool(self._folds)

    @property
    def reference(self) -> str:
        return self.actions[0] if self.actions else ""

    def fit(
        self,
        records: Iterable[NodeEventRecord],
        *,
        actions: Sequence[str] | None = None,
        reference: str | None = None,
        seed: int = 0,
        exclude_kinds: Sequence[str] = HARD_FAULT_KINDS,
        exclude_severities: Sequence[str] = (),
        rule: DeclaredRule | None = None,
    ) -> MitigationModel:
        """Fit on records with an action and a downtime. Overridden events (hard-fault kinds and
        severities: no estimate decides them) and actions with fewer than `min_per_action` events are
        skipped and counted in `describe()["dropped"]`. `rule` is the declared fallback (None: the
        practice learned here)."""
        started = time.perf_counter()
        records = list(records)
        kept, dropped = self._usable(records, set(exclude_kinds), set(exclude_severities), actions)
        self.actions = self._action_set(kept, actions, reference, dropped)
        kept = [r for r in kept if r.action in self.actions]
        if len(kept) < self.min_events:
            raise InsufficientHistory(
                f"the mitigation model needs at least {self.min_events} past events with an action and a "
                f"downtime; got {len(kept)} usable (dropped: {dropped or 'none'}). Import more history "
                f"with POST /v1/node-events."
            )
        if rule is not None:
            foreign = sorted(rule.actions - set(self.actions))
            if foreign:
                raise InvalidPolicyInput(
                    f"the declared rule names actions the history never took (often enough): {foreign}; "
                    f"known actions: {list(self.actions)}. Without history the model cannot compare them."
                )
        self.rule = rule
        events = [r.event for r in kept]
        self.encoder = FeatureEncoder.fit(events)
        x = self.encoder.transform(events)
        code = {a: i for i, a in enumerate(self.actions)}
        t = np.array([code[str(r.action)] for r in kept])
        y = np.array([float(r.downtime_minutes or 0.0) for r in kept])
        self._support = Counter(self.encoder.profile(e) for e in events)
        self._n = len(events)
        share = np.array([self._support[self.encoder.profile(e)] / self._n for e in events])
        declared = None if rule is None else np.array([code[rule.action_for(e)[0]] for e in events])
        _, summary = self._cross_fit(x, t, y, share, declared, seed)
        self._description = self._summarise(kept, t, y, dropped, summary, time.perf_counter() - started)
        return self

    def _usable(
        self,
        records: Sequence[NodeEventRecord],
        kinds: set[str],
        severities: set[str],
        actions: Sequence[str] | None,
    ) -> tuple[list[NodeEventRecord], dict[str, int]]:
        kept: list[NodeEventRecord] = []
        dropped: Counter[str] = Counter()
        for record in records:
            if not record.has_outcome:
                dropped["no_outcome"] += 1
            elif record.kind in kinds or record.severity in severities:
                dropped["hard_fault"] += 1
            elif actions is not None and record.action not in actions:
                dropped[f"unknown_action:{record.action}"] += 1
            else:
                kept.append(record)
        return kept, dict(dropped)

    def _action_set(
        self,
        kept: Sequence[NodeEventRecord],
        actions: Sequence[str] | None,
        reference: str | None,
        dropped: dict[str, int],
    ) -> tuple[str, ...]:
        counts = Counter(str(r.action) for r in kept)
        wanted = list(actions) if actions is not None else [a for a, _ in counts.most_common()]
        enough = [a for a in wanted if counts.get(a, 0) >= self.min_per_action]
        for a in wanted:
            if a not in enough and counts.get(a, 0):
                dropped[f"rare_action:{a}"] = counts[a]
        if actions is not None and len(enough) < len(wanted):
            short = {a: counts.get(a, 0) for a in wanted if a not in enough}
            raise InsufficientHistory(
                f"the mitigation model needs at least {self.min_per_action} events per action; too few: "
                f"{short} (per action: {dict(counts)}). Collect more history, or fit on fewer actions."
            )
        if len(enough) < 2:
            raise InsufficientHistory(
                f"the history needs at least two actions with {self.min_per_action} or more events each to "
                f"compare them; per action: {dict(counts) or 'none'}. With one action there is nothing "
                f"to learn: keep your practice, or import events where other actions were taken."
            )
        ref = reference if reference is not None else enough[0]
        if ref not in enough:
            raise InvalidPolicyInput(f"reference {ref!r} is not among the fitted actions {enough}")
        return (ref, *[a for a in enough if a != ref])

    def _cross_fit(
        self,
        x: np.ndarray,
        t: np.ndarray,
        y: np.ndarray,
        share: np.ndarray,
        declared: np.ndarray | None,
        seed: int,
    ) -> tuple[str | None, dict[str, Any]]:
        k, n = len(self.actions), len(y)
        rng = np.random.default_rng(seed)
        fold = rng.permutation(n) % self.folds
        mu, prop = np.zeros((n, k)), np.zeros((n, k))
        preds = {name: np.zeros((n, k)) for name in self.learners}
        fitted: dict[str, list[_Fold]] = {name: [] for name in self.learners}
        seconds: dict[str, float] = defaultdict(float)
        forest_models: list[tuple[np.ndarray, Any]] = []
        for f in range(self.folds):
            train, test = fold != f, fold == f
            clock = time.perf_counter()
            p_model = propensity_model(x[train], t[train], k, self.nuisance_estimators, seed)
            base = TLearner.fit(x[train], t[train], y[train], k, self.nuisance_estimators, seed)
            prop[test], mu[test] = p_model.predict(x[test]), base.predict(x[test])
            seconds["nuisance"] += time.perf_counter() - clock
            for name in self.learners:
                clock = time.perf_counter()
                model = fit_learner(
                    name, x[train], t[train], y[train], base, p_model, k,
                    n_est=self.nuisance_estimators, trees=self.n_estimators, seed=seed,
                )  # fmt: skip
                preds[name][test] = model.predict(x[test])
                fitted[name].append(_Fold(base, p_model, model))
                if name == "causal_forest":
                    forest_models.append((test, model))
                seconds[name] += time.perf_counter() - clock
        gamma = dr_scores(y, t, mu, prop)
        practice = prop.argmax(axis=1)
        fallback = practice if declared is None else declared
        rows = np.arange(n)
        candidates: list[Candidate] = []
        best_per_learner: dict[str, Any] = {}
        for name in self.learners:
            stderr = None
            if name == "causal_forest":
                stderr = np.zeros(n)
                choice = preds[name].argmin(axis=1)
                for test, model in forest_models:
                    stderr[test] = model.stderr(x[test], fallback[test], choice[test])
            mine = []
            for s in strictness_grid(stderr is not None):
                action, _ = gate(preds[name], fallback, prop, share, stderr, s)
                mine.append(
                    Candidate(name, s, saving(gamma[rows, action], y), float(np.mean(action != fallback)))
                )
            candidates.extend(mine)
            free = mine[0]
            top = max(mine, key=lambda c: c.estimate.saving)
            best_per_learner[name] = {
                "ungated": free.estimate.describe(),
                "best": {**top.estimate.describe(), "strictness": top.strictness.describe()},
                "fit_seconds": round(seconds[name], 2),
            }
        winner = select(candidates)
        fallback_only = saving(gamma[rows, fallback], y)
        if winner is None:
            self.learner, self.strictness, self.saving = None, None, fallback_only
            keep = self.learners[0]
        else:
            self.learner, self.strictness, self.saving = winner.learner, winner.strictness, winner.estimate
            keep = winner.learner
        self._folds = fitted[keep]
        summary = {
            "learners": best_per_learner,
            "fallback_only": fallback_only.describe(),
            "practice_accuracy": float(np.mean(practice == t)),
            "replaced": winner.replaced if winner else 0.0,
            "n_settings": len(candidates),
            "nuisance_seconds": round(seconds["nuisance"], 2),
        }
        return self.learner, summary

    def _summarise(
        self,
        kept: Sequence[NodeEventRecord],
        t: np.ndarray,
        y: np.ndarray,
        dropped: dict[str, int],
        summary: dict[str, Any],
        secs: float,
    ) -> dict[str, Any]:
        assert self.saving is not None and self.encoder is not None
        counts = Counter(int(v) for v in t)
        if self.learner is None:
            why = (
                "no learned setting beat the logged policy with 90 % confidence on held-out history: "
                "the fallback decides every event"
            )
        else:
            why = (
                f"{self.learner} with the strictness below had the best doubly-robust estimated downtime "
                f"on held-out history among {summary['n_settings']} settings whose 90 % lower bound "
                f"beats the logged policy"
            )
        return {
            "n_events": len(y),
            "actions": list(self.actions),
            "reference": self.reference,
            "per_action": {a: int(counts.get(i, 0)) for i, a in enumerate(self.actions)},
            "dropped": dropped,
            "features": self.encoder.names,
            "params": {
                "n_estimators": self.n_estimators,
                "nuisance_estimators": self.nuisance_estimators,
                "folds": self.folds,
                "learners": list(self.learners),
            },
            "fallback_policy": {
                "source": "declared_rule" if self.rule is not None else "learned_practice",
                "rule": self.rule.to_mapping() if self.rule is not None else None,
                "practice_accuracy": round(summary["practice_accuracy"], 4),
            },
            "selection": {
                "learner": self.learner,
                "strictness": self.strictness.describe() if self.strictness else None,
                "replaced_share": round(summary["replaced"], 4),
                "why": why,
                "learners": summary["learners"],
                "fallback_only": summary["fallback_only"],
            },
            "savings": self.saving.describe(),
            "metrics": {"mean_downtime": float(y.mean()), "practice_accuracy": summary["practice_accuracy"]},
            "fit_seconds": round(secs, 3),
        }

    def describe(self) -> dict[str, Any]:
        """What the model was fitted on, what it selected and what it would have saved (plain JSON)."""
        return dict(self._description)

    def _require(self) -> FeatureEncoder:
        if not self._folds or self.encoder is None:
            raise ModelNotFitted("the mitigation model is not fitted: call fit(records) first")
        return self.encoder

    def codes(self, actions: Sequence[str], what: str = "actions") -> np.ndarray:
        unknown = sorted(set(actions) - set(self.actions))
        if unknown:
            raise InvalidPolicyInput(f"{what} {unknown} not among the model's actions {list(self.actions)}")
        return np.array([self.actions.index(a) for a in actions], dtype=int)

    def features(self, events: Sequence[NodeEvent]) -> EventFeatures:
        """The events' feature rows and logged-action propensities, computed once for `practice` and
        `estimate` (a recommendation needs both)."""
        x = self._require().transform(events)
        return EventFeatures(x, self._propensity(x))

    def practice(
        self, events: Sequence[NodeEvent], features: EventFeatures | None = None
    ) -> tuple[list[str], np.ndarray]:
        """The fleet's most probable logged action per event and its probability."""
        prop = (features or self.features(events)).propensity
        best = prop.argmax(axis=1)
        return [self.actions[i] for i in best], prop[np.arange(len(events)), best]

    def _propensity(self, x: np.ndarray) -> np.ndarray:
        return np.mean([f.propensity.predict(x) for f in self._folds], axis=0)

    def estimate(
        self, events: Sequence[NodeEvent], fallback: Sequence[str], features: EventFeatures | None = None
    ) -> ActionEstimates:
        """Every action's expected downtime, the propensities and (forest) the standard error of the
        learned choice vs `fallback[i]`, averaged over the fold models."""
        encoder = self._require()
        if len(fallback) != len(events):
            raise InvalidPolicyInput(f"fallback has {len(fallback)} actions for {len(events)} events")
        features = features or self.features(events)
        if len(features.x) != len(events):
            raise InvalidPolicyInput(f"features have {len(features.x)} rows for {len(events)} events")
        x = features.x
        t0 = self.codes(list(fallback), "fallback actions")
        expected = np.mean([f.learner.predict(x) for f in self._folds], axis=0)
        stderr = None
        if self.learner == "causal_forest" and self.strictness is not None and self.strictness.z > 0:
            choice = expected.argmin(axis=1)  # only the interval test reads it: skip the cost otherwise
            stderr = np.mean([f.learner.stderr(x, t0, choice) for f in self._folds], axis=0)
        profiles = [encoder.profile(e) for e in events]
        support = np.array([self._support.get(p, 0) for p in profiles])
        return ActionEstimates(
            self.actions, expected, features.propensity, stderr, support, support / max(self._n, 1), profiles
        )

    def gate(self, est: ActionEstimates, fallback: Sequence[str]) -> tuple[list[str], list[str | None]]:
        """The selected strictness applied: (action, refusal code or None) per event."""
        t0 = self.codes(list(fallback), "fallback actions")
        if self.strictness is None:
            return list(fallback), ["not_established"] * len(fallback)
        action, code = gate(est.expected, t0, est.propensity, est.share, est.stderr, self.strictness)
        return [self.actions[a] for a in action], [GATE_CODES[c] if c >= 0 else None for c in code]

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
