"""Causal node mitigation (Deoxys): recommend the action with the lowest expected downtime for this event,
unless the evidence is not good enough — then do what the legacy rule does, and say why.

Per event, in order:

1. the legacy rule's action is worked out (the comparison point and the fallback);
2. with a fitted `MitigationModel`, every action gets its expected downtime and its effect vs the legacy
   action with a (1 - alpha) interval; the causal choice is the argmin of expected downtime;
3. hard faults (`HardFaultOverrides`: kinds like `gpu_fell_off_bus`, severity `critical`) get the
   mandated action whatever the model says (a guardrail; the out-of-service cap does not apply: the node
   is out already);
4. fall back to the legacy action when there is no model, when the event's labelled-context profile has
   fewer than `min_support` past events, when the logging policy rarely took the chosen or the legacy
   action on events like this (propensity < `min_propensity`), or when the chosen action's effect interval
   vs legacy crosses zero or is wider than `max_interval_width` minutes;
5. if the action takes the node out and `nodes_out_of_service >= max_out_of_service`, the in-service
   action with the lowest expected downtime is used instead (after a fallback: the legacy rule's
   in-service action, since the estimates were not trusted) — a guardrail.

Each candidate's `expected_cost` is its expected downtime in minutes (floored at 0); `risk` is the
probability it is worse than the legacy action (normal approximation from its interval; 0 for the legacy
action itself), so a reviewer sees both what an action should save and how sure the model is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from policies.mitigation_model import ActionEstimates, MitigationModel
from policies.mitigation_rules import HardFaultOverrides, LegacyMitigationRule, cap_guardrail
from policies.mitigation_types import MitigationInput, takes_out_of_service
from policies.types import Candidate, Decision, GuardrailEffect, InvalidPolicyInput, PolicyError, register

__all__ = ["CausalMitigationPolicy", "LegacyMitigationRule", "MitigationInput", "MitigationModel"]


@dataclass(frozen=True)
class _Row:
    """One event's slice of `ActionEstimates`."""

    actions: tuple[str, ...]
    expected: np.ndarray
    effect: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    propensity: np.ndarray
    support: int
    profile: tuple[str, ...]

    @classmethod
    def of(cls, est: ActionEstimates, i: int) -> _Row:
        return cls(
            est.actions,
            est.expected[i],
            est.effect[i],
            est.lower[i],
            est.upper[i],
            est.propensity[i],
            int(est.support[i]),
            est.profiles[i],
        )

    def best(self, allowed: Sequence[str] | None = None) -> str:
        """The action with the lowest expected downtime (among `allowed`)."""
        pool = [j for j, a in enumerate(self.actions) if allowed is None or a in allowed]
        return self.actions[min(pool, key=lambda j: self.expected[j])]


@register("mitigation_causal", "mitigation")
class CausalMitigationPolicy:
    """Deoxys-style causal mitigation with uncertainty fallback to the legacy rule, hard-fault overrides
    and an out-of-service cap. `model` (or `MitigationInput.model`, which wins) is a fitted
    `MitigationModel` or its `to_bytes()` artifact; without one every decision falls back."""

    def __init__(
        self,
        model: MitigationModel | bytes | None = None,
        *,
        alpha: float = 0.2,
        max_interval_width: float = 60.0,
        min_support: int = 100,
        min_propensity: float = 0.02,
        overrides: HardFaultOverrides | None = None,
        legacy: LegacyMitigationRule | None = None,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise InvalidPolicyInput(f"alpha must be in (0, 1), got {alpha}")
        if not max_interval_width > 0:
            raise InvalidPolicyInput(f"max_interval_width must be > 0 minutes, got {max_interval_width}")
        if min_support < 0 or not 0.0 <= min_propensity < 1.0:
            raise InvalidPolicyInput("min_support must be >= 0 and min_propensity in [0, 1)")
        self.model = MitigationModel.from_bytes(model) if isinstance(model, bytes) else model
        self.alpha = alpha
        self.max_interval_width = max_interval_width
        self.min_support = min_support
        self.min_propensity = min_propensity
        self.overrides = overrides or HardFaultOverrides()
        self.legacy = legacy or LegacyMitigationRule()
        self._z = NormalDist().inv_cdf(1.0 - alpha / 2.0)

    def decide(self, inputs: MitigationInput) -> Decision:
        return self.decide_many([inputs])[0]

    def decide_many(self, inputs: Sequence[MitigationInput]) -> list[Decision]:
        """Decide a batch (one model call per model: what the replay simulator and the bench use)."""
        for item in inputs:
            if not isinstance(item, MitigationInput):
                raise InvalidPolicyInput(f"mitigation_causal decides on MitigationInput, got {type(item)}")
        legacy = [self.legacy.action_for(item.event) for item in inputs]
        rows: list[_Row | None] = [None] * len(inputs)
        missing = [("no_model", "no fitted mitigation model: the legacy rule decides")] * len(inputs)
        groups: dict[int, tuple[MitigationModel, list[int]]] = {}
        for i, item in enumerate(inputs):
            model = item.model or self.model
            if model is None:
                continue
            if not model.fitted:
                missing[i] = ("no_model", "the mitigation model is not fitted: the legacy rule decides")
            elif legacy[i][0] not in model.actions:
                why = f"legacy action {legacy[i][0]!r} is not among the model's actions {model.actions}"
                missing[i] = ("unknown_legacy_action", why)
            else:
                groups.setdefault(id(model), (model, []))[1].append(i)
        for model, index in groups.values():
            try:
                est = model.estimate(
                    [inputs[i].event for i in index], [legacy[i][0] for i in index], self.alpha
                )
            except (PolicyError, ValueError) as exc:
                for i in index:
                    why = f"the mitigation model could not score this event ({exc}): legacy rule decides"
                    missing[i] = ("model_error", why)
                continue
            for k, i in enumerate(index):
                rows[i] = _Row.of(est, k)
        return [
            self._decide_one(item, legacy[i][0], legacy[i][1], rows[i], missing[i])
            for i, item in enumerate(inputs)
        ]

    def _risk(self, row: _Row, j: int) -> float:
        """P(action j is worse than legacy), normal approximation from its interval."""
        se = (row.upper[j] - row.lower[j]) / (2.0 * self._z)
        if not se > 0:
            return 1.0 if row.effect[j] > 0 else 0.0
        return float(1.0 - NormalDist().cdf(-row.effect[j] / se))

    def _candidates(
        self, inputs: MitigationInput, row: _Row | None, legacy: str, rule: str
    ) -> list[Candidate]:
        if row is None:
            return [Candidate(legacy, {"takes_out_of_service": takes_out_of_service(legacy)}, math.nan, 0.0,
                              True, f"legacy rule: {rule}; no estimate")]  # fmt: skip
        out = []
        for j, action in enumerate(row.actions):
            params = {
                "effect_vs_legacy": float(row.effect[j]),
                "interval": [float(row.lower[j]), float(row.upper[j])],
                "propensity": float(row.propensity[j]),
                "takes_out_of_service": takes_out_of_service(action),
            }
            feasible = not (takes_out_of_service(action) and inputs.cap_reached)
            note = "legacy rule's action" if action == legacy else ""
            risk = 0.0 if action == legacy else self._risk(row, j)
            out.append(Candidate(action, params, max(float(row.expected[j]), 0.0), risk, feasible, note))
        return out

    def _fallback(self, row: _Row, choice: str, legacy: str) -> tuple[str, str] | None:
        """(code, reason) when the causal choice cannot be trusted here, None when it can."""
        profile = ", ".join(row.profile) or "(no labelled context)"
        if row.support < self.min_support:
            return "thin_support", (
                f"thin data: {row.support} past events with {profile} (need {self.min_support}); "
                f"the legacy rule decides"
            )
        if choice == legacy:
            return None
        j, leg = row.actions.index(choice), row.actions.index(legacy)
        low = min(row.propensity[j], row.propensity[leg])
        if low < self.min_propensity:
            return "thin_overlap", (
                f"thin data: the history rarely took {choice} or {legacy} on events like this "
                f"(propensity {low:.3f} < {self.min_propensity}); the legacy rule decides"
            )
        lo, hi = float(row.lower[j]), float(row.upper[j])
        level = f"{100 * (1 - self.alpha):.0f}%"
        if hi >= 0:
            return "crosses_zero", (
                f"the {level} interval of {choice} vs legacy {legacy} is [{lo:.1f}, {hi:.1f}] min: it "
                f"crosses zero, so {choice} is not clearly better; the legacy rule decides"
            )
        if hi - lo > self.max_interval_width:
            return "too_wide", (
                f"the {level} interval of {choice} vs legacy {legacy} is {hi - lo:.1f} min wide "
                f"(max {self.max_interval_width:g}); the legacy rule decides"
            )
        return None

    def _decide_one(
        self, inputs: MitigationInput, legacy: str, rule: str, row: _Row | None, missing: tuple[str, str]
    ) -> Decision:
        causal = row.best() if row is not None else None
        guardrails: list[GuardrailEffect] = []
        fallback: tuple[str, str] | None = None
        mandated = self.overrides.mandated(inputs.event)
        if mandated is not None:
            action = mandated[0]
            before = causal or legacy
            guardrails.append(GuardrailEffect("hard_fault_override", before, action, mandated[1]))
        else:
            if row is None or causal is None:
                action, fallback = legacy, missing
            else:
                fallback = self._fallback(row, causal, legacy)
                action = legacy if fallback is not None else causal
            # under the cap: the model's best in-service action when it is trusted, else the rule's
            alternative, why = self.legacy.in_service_action, " (the legacy rule's in-service action)"
            in_service = [a for a in (row.actions if row else ()) if not takes_out_of_service(a)]
            if row is not None and fallback is None and in_service:
                alternative, why = row.best(in_service), " (the best in-service action)"
            action, capped = cap_guardrail(inputs, action, alternative, why)
            if capped is not None:
                guardrails.append(capped)
        expected = None
        if row is not None and action in row.actions:
            expected = max(float(row.expected[row.actions.index(action)]), 0.0)
        model = inputs.model or self.model
        details: dict[str, Any] = {
            "legacy_action": legacy,
            "legacy_rule": rule,
            "causal_choice": causal,
            "fallback": fallback[0] if fallback else None,
            "alpha": self.alpha,
            "thresholds": {
                "max_interval_width": self.max_interval_width,
                "min_support": self.min_support,
                "min_propensity": self.min_propensity,
            },
        }
        if row is not None:
            details.update({"support": row.support, "profile": list(row.profile)})
        if model is not None and model.fitted:
            info = model.describe()
            details["model"] = {"n_events": info.get("n_events"), "reference": info.get("reference")}
        candidates = self._candidates(inputs, row, legacy, rule)
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
                "legacy_action": legacy,
            },
            policy=self.name,  # type: ignore[attr-defined]
            candidates=candidates,
            guardrails=guardrails,
            fallback_reason=fallback[1] if fallback else None,
            details=details,
        )
