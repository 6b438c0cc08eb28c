"""Causal node mitigation (Deoxys): recommend the action with the lowest expected downtime for this event
when the fleet's own history says it beats the fallback, else the fallback — and say which and why.

Per event, in order:

1. the fallback: a rule the user declared over their own signals (`DeclaredRule`) if there is one, else
   the fleet's practice learned from its history (the logged-action model's most probable action), else
   (no model, no rule) the bundled legacy rule; the evidence names the source and its reason;
2. with a fitted `MitigationModel`, every action's expected downtime; the learned choice is the argmin,
   kept only if it passes the strictness the model chose by off-policy evaluation on held-out history
   (overlap, support, relative gain, interval level — all relative, none in minutes); without a model,
   for an event lacking signals the model relies on, or when the fallback's action never appears in the
   history, the fallback decides and the reason says so;
3. hard faults (`HardFaultOverrides`, configurable) get the mandated action whatever the model says;
4. if the action takes the node out and `nodes_out_of_service >= max_out_of_service`, the in-service
   action with the lowest expected downtime is used instead (after a fallback: the legacy in-service
   action) — a guardrail.

Each candidate's `expected_cost` is its expected downtime in the history's units (floored at 0); `risk`
is the probability it is worse than the fallback (from the learner's standard error; NaN when the
selected learner has none).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from policies.mitigation_model import ActionEstimates, EventFeatures, MitigationModel
from policies.mitigation_practice import DeclaredRule
from policies.mitigation_rules import HardFaultOverrides, LegacyMitigationRule, cap_guardrail
from policies.mitigation_types import MitigationInput, takes_out_of_service
from policies.types import Candidate, Decision, GuardrailEffect, InvalidPolicyInput, PolicyError, register

__all__ = [
    "CausalMitigationPolicy",
    "DeclaredRule",
    "LegacyMitigationRule",
    "MitigationInput",
    "MitigationModel",
]

SOURCES = {
    "declared_rule": "your declared rule",
    "learned_practice": "your fleet's learned practice",
    "legacy_rule": "the bundled legacy rule",
}


@dataclass(frozen=True)
class _Fallback:
    action: str
    why: str
    source: str


@dataclass(frozen=True)
class _Row:
    """One event's slice of `ActionEstimates` and the gate's verdict."""

    actions: tuple[str, ...]
    expected: np.ndarray
    propensity: np.ndarray
    stderr: float | None
    share: float
    profile: tuple[str, ...]
    gated: str
    code: str | None

    def best(self, allowed: Sequence[str] | None = None) -> str:
        pool = [j for j, a in enumerate(self.actions) if allowed is None or a in allowed]
        return self.actions[min(pool, key=lambda j: self.expected[j])]


@register("mitigation_causal", "mitigation")
class CausalMitigationPolicy:
    """Deoxys-style causal mitigation falling back to the fleet's practice (or a declared rule), with
    hard-fault overrides and an out-of-service cap. `model` (or `MitigationInput.model`, which wins) is a
    fitted `MitigationModel` or its `to_bytes()` artifact; without one every decision falls back."""

    def __init__(
        self,
        model: MitigationModel | bytes | None = None,
        *,
        rule: DeclaredRule | None = None,
        overrides: HardFaultOverrides | None = None,
        legacy: LegacyMitigationRule | None = None,
    ) -> None:
        self.model = MitigationModel.from_bytes(model) if isinstance(model, bytes) else model
        self.rule = rule
        self.overrides = overrides or HardFaultOverrides()
        self.legacy = legacy or LegacyMitigationRule()

    def decide(self, inputs: MitigationInput) -> Decision:
        return self.decide_many([inputs])[0]

    def _features(self, inputs: Sequence[MitigationInput]) -> dict[int, EventFeatures]:
        """Each input's feature row and propensities under its fitted model, computed once per model for
        the fallback (practice) and the estimate; inputs whose model cannot encode them are left out."""
        groups: dict[int, tuple[MitigationModel, list[int]]] = {}
        for i, item in enumerate(inputs):
            model = item.model or self.model
            if model is not None and model.fitted and model.encoder is not None:
                groups.setdefault(id(model), (model, []))[1].append(i)
        out: dict[int, EventFeatures] = {}
        for model, index in groups.values():
            try:
                found = model.features([inputs[i].event for i in index])
            except (PolicyError, ValueError):
                continue  # practice and estimate recompute and report the failure per event
            out.update({i: found.rows([k]) for k, i in enumerate(index)})
        return out

    @staticmethod
    def _rows(features: dict[int, EventFeatures], index: Sequence[int]) -> EventFeatures | None:
        if not all(i in features for i in index):
            return None
        parts = [features[i] for i in index]
        return EventFeatures(np.vstack([p.x for p in parts]), np.vstack([p.propensity for p in parts]))

    def _fallbacks(
        self, inputs: Sequence[MitigationInput], features: dict[int, EventFeatures]
    ) -> list[_Fallback]:
        out: list[_Fallback | None] = [None] * len(inputs)
        practice: dict[int, tuple[MitigationModel, list[int]]] = {}
        for i, item in enumerate(inputs):
            rule, model = item.rule or self.rule, item.model or self.model
            if rule is not None:
                out[i] = _Fallback(*rule.action_for(item.event), "declared_rule")
            elif model is not None and model.fitted:
                practice.setdefault(id(model), (model, []))[1].append(i)
            else:
                action, why = self.legacy.action_for(item.event)
                out[i] = _Fallback(action, f"legacy rule: {why}", "legacy_rule")
        for model, index in practice.values():
            actions, prob = model.practice([inputs[i].event for i in index], self._rows(features, index))
            n = model.describe().get("n_events")
            for k, i in enumerate(index):
                why = (
                    f"your operators' most likely action on events like this ({actions[k]}, "
                    f"probability {prob[k]:.2f}, learned from {n} past events)"
                )
                out[i] = _Fallback(actions[k], why, "learned_practice")
        return [f for f in out if f is not None]

    def decide_many(self, inputs: Sequence[MitigationInput]) -> list[Decision]:
        """Decide a batch (one model call per model: what the bench and the replay simulator use)."""
        for item in inputs:
            if not isinstance(item, MitigationInput):
                raise InvalidPolicyInput(f"mitigation_causal decides on MitigationInput, got {type(item)}")
        features = self._features(inputs)
        fallbacks = self._fallbacks(inputs, features)
        rows: list[_Row | None] = [None] * len(inputs)
        missing: list[tuple[str, str]] = [("no_model", "no fitted mitigation model")] * len(inputs)
        groups: dict[int, tuple[MitigationModel, list[int]]] = {}
        for i, item in enumerate(inputs):
            model = item.model or self.model
            if model is None:
                continue
            if not model.fitted or model.encoder is None:
                missing[i] = ("no_model", "the mitigation model is not fitted")
                continue
            lacks = model.encoder.missing(item.event)
            if lacks:
                names = [k.removeprefix("signal.").removeprefix("context.") for k in lacks]
                missing[i] = ("missing_signals", f"the event lacks signals every training event had: {names}")
            elif fallbacks[i].action not in model.actions:
                missing[i] = (
                    "unknown_fallback_action",
                    f"the fallback's action {fallbacks[i].action!r} is not (often enough) in the "
                    f"history the model learned from (actions {list(model.actions)}): it cannot be compared",
                )
            else:
                groups.setdefault(id(model), (model, []))[1].append(i)
        for model, index in groups.values():
            events = [inputs[i].event for i in index]
            fallback = [fallbacks[i].action for i in index]
            try:
                est = model.estimate(events, fallback, self._rows(features, index))
                gated, codes = model.gate(est, fallback)
            except (PolicyError, ValueError) as exc:
                for i in index:
                    missing[i] = ("model_error", f"the mitigation model could not score this event ({exc})")
                continue
            for k, i in enumerate(index):
                rows[i] = self._row(est, k, gated[k], codes[k])
        return [self._decide_one(item, fallbacks[i], rows[i], missing[i]) for i, item in enumerate(inputs)]

    @staticmethod
    def _row(est: ActionEstimates, k: int, gated: str, code: str | None) -> _Row:
        stderr = None if est.stderr is None else float(est.stderr[k])
        return _Row(
            est.actions, est.expected[k], est.propensity[k], stderr, float(est.share[k]), est.profiles[k],
            gated, code,
        )  # fmt: skip

    def _candidates(self, inputs: MitigationInput, row: _Row | None, fb: _Fallback) -> list[Candidate]:
        if row is None:
            only = {"takes_out_of_service": takes_out_of_service(fb.action)}
            return [Candidate(fb.action, only, math.nan, 0.0, True, f"fallback ({fb.source}); no estimate")]
        out = []
        base = row.expected[row.actions.index(fb.action)] if fb.action in row.actions else math.nan
        for j, action in enumerate(row.actions):
            effect = float(row.expected[j] - base)
            risk = 0.0 if action == fb.action else math.nan
            if action != fb.action and row.stderr is not None and row.stderr > 0 and action == row.best():
                risk = float(NormalDist().cdf(effect / row.stderr))
            params: dict[str, float | bool] = {
                "effect_vs_fallback": effect,
                "propensity": float(row.propensity[j]),
                "takes_out_of_service": takes_out_of_service(action),
            }
            feasible = not (takes_out_of_service(action) and inputs.cap_reached)
            note = f"fallback's action ({fb.source})" if action == fb.action else ""
            out.append(Candidate(action, params, max(float(row.expected[j]), 0.0), risk, feasible, note))
        return out

    def _reason(self, row: _Row, fb: _Fallback, model: MitigationModel) -> str:
        choice, s = row.best(), model.strictness
        j, f = row.actions.index(choice), row.actions.index(fb.action)
        if row.code == "not_established" or s is None:
            info = model.describe().get("savings", {})
            why = (
                "on your history no learned setting beat your current practice with 90 % confidence "
                f"({info.get('statement', 'no estimate')})"
            )
        elif row.code == "thin_overlap":
            low = min(row.propensity[j], row.propensity[f])
            why = (
                f"thin data: your history rarely took {choice} or {fb.action} on events like this "
                f"(propensity {low:.3f} < {s.min_propensity:g})"
            )
        elif row.code == "thin_support":
            profile = ", ".join(row.profile) or "(no labelled context)"
            why = (
                f"thin data: {100 * row.share:.2f} % of the history has {profile} "
                f"(need {100 * s.min_profile_share:g} %)"
            )
        elif row.code == "small_gain":
            rel = (row.expected[f] - row.expected[j]) / max(abs(row.expected[f]), 1e-12)
            why = (
                f"{choice} is expected to save only {100 * rel:.1f} % over {fb.action} "
                f"(need {100 * s.min_relative_gain:g} %, chosen on held-out history)"
            )
        else:
            why = (
                f"{choice}'s saving over {fb.action} is not above zero at the {s.level} confidence level "
                f"chosen on held-out history"
            )
        return why

    def _decide_one(
        self, inputs: MitigationInput, fb: _Fallback, row: _Row | None, missing: tuple[str, str]
    ) -> Decision:
        model = inputs.model or self.model
        causal = row.best() if row is not None else None
        guardrails: list[GuardrailEffect] = []
        fallback: tuple[str, str] | None = None
        overrides = inputs.overrides or self.overrides
        mandated = overrides.mandated(inputs.event)
        source = f"{SOURCES[fb.source]} decides: {fb.why}"
        if mandated is not None:
            action = mandated[0]
            guardrails.append(
                GuardrailEffect("hard_fault_override", causal or fb.action, action, mandated[1])
            )
        else:
            if row is None or model is None:
                action, fallback = fb.action, (missing[0], f"{missing[1]}; {source}")
            elif row.code is not None:
                action, fallback = fb.action, (row.code, f"{self._reason(row, fb, model)}; {source}")
            else:
                action = row.gated
            alternative, why = self.legacy.in_service_action, " (the legacy in-service action)"
            in_service = [a for a in (row.actions if row else ()) if not takes_out_of_service(a)]
            if row is not None and fallback is None and in_service:
                alternative, why = row.best(in_service), " (the best in-service action)"
            action, capped = cap_guardrail(inputs, action, alternative, why)
            if capped is not None:
                guardrails.append(capped)
        expected = None
        if row is not None and action in row.actions:
            expected = max(float(row.expected[row.actions.index(action)]), 0.0)
        details: dict[str, Any] = {
            "fallback_policy": {"source": fb.source, "action": fb.action, "why": fb.why},
            "fallback_action": fb.action,
            "causal_choice": causal,
            "fallback": fallback[0] if fallback else None,
        }
        if row is not None:
            details.update({"support_share": row.share, "profile": list(row.profile)})
        if model is not None and model.fitted and model.encoder is not None:
            info = model.describe()
            details["model"] = {"n_events": info.get("n_events"), "reference": info.get("reference")}
            details["learner"] = model.learner
            details["strictness"] = model.strictness.describe() if model.strictness else None
            details["savings"] = info.get("savings", {}).get("statement")
            unseen = model.encoder.unseen(inputs.event)
            if unseen:
                details["ignored_signals"] = unseen
        candidates = self._candidates(inputs, row, fb)
        if action not in {c.action for c in candidates}:
            why = "mandated by a hard-fault override" if mandated else "in-service action under the cap"
            params = {"takes_out_of_service": takes_out_of_service(action)}
            candidates.append(Candidate(action, params, math.nan, 0.0, True, f"{why}; no estimate"))
        return Decision(
            kind="mitigation",
            target=inputs.node,
            action=action,
            params={
                "takes_out_of_service": takes_out_of_service(action),
                "expected_downtime_minutes": expected,
                "fallback_action": fb.action,
            },
            policy=self.name,  # type: ignore[attr-defined]
            candidates=candidates,
            guardrails=guardrails,
            fallback_reason=fallback[1] if fallback else None,
            details=details,
        )
