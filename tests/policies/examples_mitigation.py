"""Mitigation inputs for the policy conformance suite, and the small seeded model the tests share.

`example_inputs()` are ordinary decisions (a fitted model travels in the input); `fallback_inputs()` must
make `mitigation_causal` fall back (no model; an event lacking a signal every training event had). The
model is fitted once per process on 1,500 synthetic events with a few trees (~5 s).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from policies.mitigation import CausalMitigationPolicy  # noqa: F401  (registers the mitigation policies)
from policies.mitigation_model import MitigationModel
from policies.mitigation_synthetic import SyntheticMitigationData, generate
from policies.mitigation_types import MitigationInput, NodeEvent


@lru_cache(maxsize=1)
def history() -> SyntheticMitigationData:
    """1,500 logged events (seed 7) from the documented generator."""
    return generate(1500, seed=7)


@lru_cache(maxsize=1)
def small_model() -> MitigationModel:
    """A cheap fitted model: 24 causal-forest trees, 30 LightGBM trees per nuisance model."""
    return MitigationModel(n_estimators=24, nuisance_estimators=30).fit(history().records, seed=0)


def event(
    ecc: float = 3,
    xid: float = 0,
    temp: float = 65,
    *,
    hardware: str = "h100",
    workload: str = "inference",
    age_days: float = 400,
    util: float = 0.5,
    kind: str = "ecc_errors",
    severity: str = "warning",
) -> NodeEvent:
    """An event shaped like the generator's (signals ecc/xid/temperature; context hardware/workload/...)."""
    return NodeEvent(
        signals={"ecc_errors": float(ecc), "xid_errors": float(xid), "temperature_c": float(temp)},
        context={"hardware": hardware, "workload": workload, "node_age_days": age_days, "gpu_util": util},
        kind=kind,
        severity=severity,
    )


def example_inputs() -> list[tuple[str, Any]]:
    model = small_model()
    quiet = event(ecc=0, age_days=100)
    ageing = event(ecc=20, xid=1, age_days=1000)
    noisy = event(ecc=400, xid=2, temp=78, workload="training", age_days=1200)
    hard = event(ecc=5, kind="gpu_fell_off_bus", severity="critical")
    return [
        ("mitigation_legacy", MitigationInput("node-1", quiet, 0, 2)),
        ("mitigation_legacy", MitigationInput("node-2", noisy, 0, 2)),
        ("mitigation_legacy", MitigationInput("node-3", noisy, 2, 2)),  # cap reached
        ("mitigation_causal", MitigationInput("node-4", quiet, 0, 2, model)),
        ("mitigation_causal", MitigationInput("node-5", noisy, 0, 2, model)),
        ("mitigation_causal", MitigationInput("node-10", ageing, 0, 2, model)),
        ("mitigation_causal", MitigationInput("node-6", noisy, 2, 2, model)),  # cap reached
        ("mitigation_causal", MitigationInput("node-7", hard, 5, 2, model)),  # hard-fault override
    ]


def fallback_inputs() -> list[tuple[str, Any]]:
    lacking = event(ecc=60, xid=3, temp=82, hardware="v100", workload="training", age_days=1600)
    lacking.signals.pop("xid_errors")
    return [
        ("mitigation_causal", MitigationInput("node-8", event(ecc=40), 0, 2)),  # no model
        ("mitigation_causal", MitigationInput("node-9", lacking, 0, 2, small_model())),  # missing signal
    ]
