"""Semi-synthetic unhealthy-node events with known potential outcomes (the truth the mitigation policy is
scored against: tests, `bench/mitigation.py`, the replay simulator).

Structural model, one event (all draws independent unless stated):

- context: `hardware` in {h100 .50, a100 .44, v100 .06}; `workload` in {inference .50, training .35,
  batch .15}, except on v100 where training is rare (P = `thin_rate`, default .05): **v100 + training is
  the thin-data region** (~0.3% of events). `node_age_days` ~ U(30, 1500) (v100: U(900, 2000));
  `gpu_util` ~ Beta(2, 2).
- signals: `ecc_errors` = round(exp(N(1.5, 1.6))); `xid_errors` ~ Poisson(0.25 + 0.6 [v100] + 0.3 age_y);
  `temperature_c` ~ N(68 + 6 [training], 8).
- kind: `gpu_xid` if xid >= 2, `thermal` if temp >= 85, else `ecc_errors`; with P = `hard_fault_rate` a
  hard fault (`gpu_fell_off_bus` / `disk_failure`, severity critical). Severity `error` if ecc >= 50,
  xid >= 2 or temp >= 88, else `warning`.
- expected downtime (minutes of VM downtime over the next day) under each action, with
  e = log1p(ecc), h = max(temp - 80, 0) / 5, a = age in years, restart cost R (inference 4, batch 12,
  training 35), crash cost C = 45 + 2R, p = sigmoid(-3.5 + 0.7e + 0.8 xid + 0.8h + 0.25a):
    observe          p C                              (the fault runs its course)
    live_migrate     M (0.5 + util) + 0.2 p C         (M: inference 2, batch 6, training 25; v100: 40)
    reboot           8 + R + p' C, p' = p with e's coefficient cut to 0.1 (clears soft ECC faults only)
    drain_and_repair 40 + 0.5 R                       (fixes everything, costs a repair slot)
  In the thin region reboot also costs +40 (old driver stack re-provisions): there the pooled
  neighbours mislead and only drain_and_repair is good. Hard faults: observe/live_migrate/reboot cost
  C + 60, drain 40 + 0.5 R.
- logging policy (confounded): with P = 1 - `explore`, the legacy rule (`policies.mitigation_rules`) on
  signals seen through noise (ecc x LogNormal(0, .3), temp + N(0, 2)); otherwise an operator's uniform
  choice. Hard faults are always drained.
- observed downtime = expected downtime of the logged action x Gamma(shape `noise_shape`, mean 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from policies.mitigation_rules import legacy_action
from policies.mitigation_types import ACTIONS, HARD_FAULT_KINDS, NodeEvent, NodeEventRecord

ACTION_NAMES: tuple[str, ...] = tuple(a.name for a in ACTIONS)
RESTART = {"inference": 4.0, "batch": 12.0, "training": 35.0}
MIGRATE = {"inference": 3.0, "batch": 6.0, "training": 12.0}


def in_thin_region(event: NodeEvent) -> bool:
    """True for the rare feature combination the history barely covers (v100 running training)."""
    return event.context.get("hardware") == "v100" and event.context.get("workload") == "training"


def expected_downtime(event: NodeEvent) -> dict[str, float]:
    """The true expected downtime (minutes) of every action for `event`: the potential outcomes."""
    s, c = event.signals, event.context
    e = float(np.log1p(s.get("ecc_errors", 0.0)))
    xid = s.get("xid_errors", 0.0)
    h = max(s.get("temperature_c", 60.0) - 80.0, 0.0) / 5.0
    age = float(c.get("node_age_days", 365.0)) / 365.0
    util = float(c.get("gpu_util", 0.5))
    workload = str(c.get("workload", "inference"))
    restart = RESTART.get(workload, 10.0)
    crash = 80.0 + 3.0 * restart
    drain = 12.0 + 0.5 * restart
    if event.kind in HARD_FAULT_KINDS:
        return {a: (drain if a == "drain_and_repair" else crash + 60.0) for a in ACTION_NAMES}
    thin = in_thin_region(event)
    hardware = -5.0 + 1.2 * h + 0.7 * age
    p = _sigmoid(hardware + 1.0 * e + 1.0 * xid)
    p_reboot = _sigmoid(hardware + 0.1 * e + (0.1 if thin else 1.0) * xid)
    migrate = 40.0 if c.get("hardware") == "v100" else MIGRATE.get(workload, 6.0)
    return {
        "observe": p * crash,
        "live_migrate": migrate * (0.5 + util) + 0.3 * p * crash,
        "reboot": 2.0 + restart + p_reboot * crash,
        "drain_and_repair": drain + (90.0 if thin else 0.0),
    }


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


@dataclass(frozen=True)
class SyntheticMitigationData:
    """Logged history plus the truth: `expected` is (n, actions) true expected downtime, `logged` the
    index of the logged action, `thin` / `hard_fault` flag the regions."""

    records: list[NodeEventRecord]
    expected: np.ndarray
    logged: np.ndarray
    thin: np.ndarray
    hard_fault: np.ndarray
    actions: tuple[str, ...] = ACTION_NAMES

    @property
    def events(self) -> list[NodeEvent]:
        return [r.event for r in self.records]

    def downtime_of(self, choices: Sequence[str]) -> np.ndarray:
        """True expected downtime of choosing `choices[i]` for event i."""
        index = {a: i for i, a in enumerate(self.actions)}
        return self.expected[np.arange(len(choices)), [index[c] for c in choices]]

    def oracle(self) -> list[str]:
        """The best action per event (what a policy knowing the potential outcomes would do)."""
        return [self.actions[i] for i in self.expected.argmin(axis=1)]


def _sample_event(
    rng: np.random.Generator, thin_rate: float, hard_fault_rate: float, thin_only: bool = False
) -> NodeEvent:
    hardware = "v100" if thin_only else str(rng.choice(["h100", "a100", "v100"], p=[0.50, 0.44, 0.06]))
    if thin_only:
        workload, age_days = "training", rng.uniform(900, 2000)
    elif hardware == "v100":
        rest = (1.0 - thin_rate) / 2.0
        workload = str(rng.choice(["inference", "training", "batch"], p=[rest, thin_rate, rest]))
        age_days = rng.uniform(900, 2000)
    else:
        workload = str(rng.choice(["inference", "training", "batch"], p=[0.50, 0.35, 0.15]))
        age_days = rng.uniform(30, 1500)
    ecc = float(np.round(np.exp(rng.normal(1.5, 1.6))))
    xid = float(rng.poisson(0.25 + 0.6 * (hardware == "v100") + 0.3 * age_days / 365.0))
    temp = float(np.round(rng.normal(68.0 + 6.0 * (workload == "training"), 8.0), 1))
    if rng.random() < hard_fault_rate:
        kind, severity = str(rng.choice(HARD_FAULT_KINDS)), "critical"
    else:
        kind = "gpu_xid" if xid >= 2 else "thermal" if temp >= 85 else "ecc_errors"
        severity = "error" if ecc >= 50 or xid >= 2 or temp >= 88 else "warning"
    return NodeEvent(
        signals={"ecc_errors": ecc, "xid_errors": xid, "temperature_c": temp},
        context={
            "hardware": hardware,
            "workload": workload,
            "node_age_days": float(np.round(age_days)),
            "gpu_util": float(np.round(rng.beta(2, 2), 3)),
        },
        kind=kind,
        severity=severity,
    )


def _logged_action(event: NodeEvent, rng: np.random.Generator, explore: float) -> str:
    if event.kind in HARD_FAULT_KINDS:
        return "drain_and_repair"
    if rng.random() < explore:
        return str(rng.choice(ACTION_NAMES))
    noisy = dict(event.signals)
    noisy["ecc_errors"] = noisy["ecc_errors"] * float(rng.lognormal(0.0, 0.3))
    noisy["temperature_c"] = noisy["temperature_c"] + float(rng.normal(0.0, 2.0))
    return legacy_action(NodeEvent(noisy, event.context, event.kind, event.severity))[0]


def generate(
    n: int,
    seed: int = 0,
    *,
    explore: float = 0.3,
    noise_shape: float = 3.0,
    thin_rate: float = 0.05,
    hard_fault_rate: float = 0.02,
    thin_only: bool = False,
) -> SyntheticMitigationData:
    """`n` logged events from the structural model in the module docstring (seeded, reproducible);
    `thin_only` draws every event from the thin-data region (to probe the fallback there)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    records: list[NodeEventRecord] = []
    expected = np.empty((n, len(ACTION_NAMES)))
    logged = np.empty(n, dtype=int)
    for i in range(n):
        event = _sample_event(rng, thin_rate, hard_fault_rate, thin_only)
        truth = expected_downtime(event)
        expected[i] = [truth[a] for a in ACTION_NAMES]
        action = _logged_action(event, rng, explore)
        logged[i] = ACTION_NAMES.index(action)
        downtime = truth[action] * float(rng.gamma(noise_shape, 1.0 / noise_shape))
        records.append(
            NodeEventRecord(
                dict(event.signals), dict(event.context), event.kind, event.severity, action, downtime
            )
        )
    thin = np.array([in_thin_region(r) for r in records], dtype=bool)
    hard = np.array([r.kind in HARD_FAULT_KINDS for r in records], dtype=bool)
    return SyntheticMitigationData(records, expected, logged, thin, hard)


def sample_downtime(
    event: NodeEvent, action: str, rng: np.random.Generator, noise_shape: float = 3.0
) -> float:
    """One realised downtime of `action` on `event` (for a replay simulator applying a policy)."""
    return expected_downtime(event)[action] * float(rng.gamma(noise_shape, 1.0 / noise_shape))
