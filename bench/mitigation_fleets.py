"""Generating processes of unhealthy-node history for `bench/mitigation.py`: fleets that differ in signal
names, outcome units, action sets, confounding strength, override rate and history size, each with known
potential outcomes (the truth the policies are scored against).

Common to every fleet: an event's expected downtime under each action is `outcomes(signals)` (n x k);
the operators' rule `rule(signals)` picks the logged action from the signals (the confounding: it reads
the same signals that drive the outcomes), except with probability `override` an operator picks an action
uniformly at random; the observed downtime is the logged action's expected downtime times Gamma(3, 1/3)
noise. `confounding` says how sharply the rule follows the risk signals (1: a hard threshold rule; lower:
the rule also reads an irrelevant signal, so it is less predictable from the risk).

Processes (`VALIDATION` ones are only run after the method was chosen):

- `bundled`: `policies.mitigation_synthetic` (GPU nodes; minutes; observe / live_migrate / reboot /
  drain_and_repair; the legacy rule with 30 % operator exploration; 20,000 events).
- `vm_fleet`: virtualisation hosts; downtime in VM-minutes (~190 / event); nine signals (ECC counts,
  reallocated sectors, link flaps, kernel errors, temperature, node age, VM count, recent reboots) and a
  hardware generation; observe / reboot / live_migrate / drain_and_repair; 20 % overrides; 4,000 events.
- `storage_seconds`: storage servers; downtime in seconds (~3,000); five actions wait / restart_daemon /
  failover / replace_disk / rebuild_array; strong confounding; 10 % overrides; 8,000 events; a hard fault
  kind `disk_dead` the bench declares as an override (replace_disk) through the API.
- `network_small`: top-of-rack links; minutes; three actions ignore / reseat / swap_optic; 15 %
  overrides; only 500 events (too few to learn much: the goal there is never to be worse).
- `gpu_jobs` (validation): GPU training hosts; downtime in GPU-minutes (~60); monitor / reset_gpu /
  cordon / rma; weak confounding; 5 % overrides; 2,000 events.
- `edge_mixed` (validation): edge sites; seconds (~900); five actions noop / restart_service /
  power_cycle / reimage / dispatch_tech; 25 % overrides; 12,000 events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from policies.mitigation_synthetic import generate

Signals = dict[str, np.ndarray]


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class FleetData:
    """Events as API bodies (kind, severity, signals, context) with the truth: expected (n, k)
    downtime per action, the logged action index and the operators' rule's action (no overrides)."""

    events: list[dict[str, object]]
    expected: np.ndarray
    logged: np.ndarray
    rule: np.ndarray
    downtime: np.ndarray


@dataclass(frozen=True)
class Fleet:
    name: str
    unit: str
    actions: tuple[str, ...]
    history: int
    override: float
    confounding: float
    draw: Callable[[np.random.Generator, int], tuple[Signals, dict[str, np.ndarray]]]
    outcomes: Callable[[Signals, dict[str, np.ndarray]], np.ndarray]
    rule: Callable[[Signals, dict[str, np.ndarray], np.ndarray], np.ndarray]
    kind: Callable[[Signals, np.random.Generator], list[str]] | None = None
    overrides: dict[str, dict[str, str]] | None = None
    validation: bool = False

    def sample(self, n: int, seed: int) -> FleetData:
        rng = np.random.default_rng(seed)
        signals, context = self.draw(rng, n)
        expected = self.outcomes(signals, context)
        nuisance = rng.normal(size=n)  # what else the operators look at, unrelated to the outcome
        rule = self.rule(signals, context, (1.0 - self.confounding) * 2.0 * nuisance)
        flip = rng.random(n) < self.override
        logged = np.where(flip, rng.integers(0, len(self.actions), n), rule)
        kinds = self.kind(signals, rng) if self.kind else ["degraded"] * n
        if self.overrides:
            for i, kind in enumerate(kinds):
                mandated = self.overrides["kinds"].get(kind)
                if mandated is not None:
                    logged[i] = self.actions.index(mandated)
        downtime = expected[np.arange(n), logged] * rng.gamma(3.0, 1.0 / 3.0, n)
        events = []
        for i in range(n):
            events.append({
                "kind": kinds[i], "severity": "warning",
                "signals": {k: round(float(v[i]), 3) for k, v in signals.items()},
                "context": {k: (str(v[i]) if v.dtype.kind in "UO" else round(float(v[i]), 3))
                            for k, v in context.items()},
            })  # fmt: skip
        return FleetData(events, expected, logged, rule, downtime)


def _bundled_sample(n: int, seed: int) -> FleetData:
    data = generate(n, seed=seed)
    from policies.mitigation_rules import legacy_action

    events = [
        {"kind": r.kind, "severity": r.severity, "signals": r.signals, "context": r.context}
        for r in data.records
    ]
    rule = np.array([data.actions.index(legacy_action(r.event)[0]) for r in data.records])
    downtime = np.array([r.downtime_minutes for r in data.records])
    return FleetData(events, data.expected, data.logged, rule, downtime)


class BundledFleet(Fleet):
    def sample(self, n: int, seed: int) -> FleetData:
        return _bundled_sample(n, seed)


BUNDLED = BundledFleet(
    "bundled", "minutes", ("observe", "live_migrate", "reboot", "drain_and_repair"), 20_000, 0.3, 1.0,
    lambda rng, n: ({}, {}), lambda s, c: np.zeros((0, 4)), lambda s, c, z: np.zeros(0, dtype=int),
    overrides={"kinds": {"gpu_fell_off_bus": "drain_and_repair", "disk_failure": "drain_and_repair"},
               "severities": {"critical": "drain_and_repair"}},
)  # fmt: skip


# --- vm_fleet: VM-minutes, nine signals, hardware generation -------------------------------------------
def _vm_draw(rng: np.random.Generator, n: int) -> tuple[Signals, dict[str, np.ndarray]]:
    gen = rng.choice(np.array(["gen3", "gen4", "gen5"]), n, p=[0.25, 0.45, 0.30])
    s = {
        "ecc_ce_count": np.round(np.exp(rng.normal(2.0, 1.5, n))),
        "ecc_ue_count": rng.poisson(0.15, n).astype(float),
        "reallocated_sectors": np.round(np.exp(rng.normal(1.0, 1.8, n))),
        "link_flaps_24h": rng.poisson(0.8, n).astype(float),
        "kernel_err_rate": np.round(rng.gamma(1.5, 2.0, n), 2),
        "inlet_temp_c": np.round(rng.normal(27 + 3 * (gen == "gen3"), 4, n), 1),
        "node_age_days": np.round(rng.uniform(30, 2200, n)),
        "vm_count": rng.integers(4, 60, n).astype(float),
        "reboots_7d": rng.poisson(0.4, n).astype(float),
    }
    return s, {"hw_generation": gen}


def _vm_outcomes(s: Signals, c: dict[str, np.ndarray]) -> np.ndarray:
    vms = s["vm_count"]
    old = c["hw_generation"] == "gen3"
    mem = _sig(-4 + 0.6 * np.log1p(s["ecc_ce_count"]) + 2.0 * s["ecc_ue_count"] + 0.8 * old)
    disk = _sig(-4 + 0.5 * np.log1p(s["reallocated_sectors"]) + 0.0008 * s["node_age_days"])
    soft = _sig(-3 + 0.35 * s["kernel_err_rate"] + 0.5 * s["link_flaps_24h"] - 0.8 * s["reboots_7d"])
    crash = 20 * vms
    observe = (mem + disk + soft) * crash
    reboot = 1.2 * vms + (mem + disk + 0.15 * soft) * crash
    migrate = (
        1.5 * vms * (1 + 0.5 * old) + 0.25 * (mem + disk + soft) * crash + 0.02 * s["inlet_temp_c"] * vms
    )
    drain = 3.0 * vms + 60 + 0.05 * crash * soft
    return np.column_stack([observe, reboot, migrate, drain])


def _vm_rule(s: Signals, c: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    out = np.zeros(len(z), dtype=int)
    out[(s["kernel_err_rate"] + z > 6) | (s["link_flaps_24h"] >= 3)] = 1
    out[s["ecc_ce_count"] * np.exp(0.3 * z) > 200] = 2
    out[(s["ecc_ue_count"] >= 1) | (s["reallocated_sectors"] > 150)] = 3
    return out


VM_FLEET = Fleet(
    "vm_fleet", "VM-minutes", ("observe", "reboot", "live_migrate", "drain_and_repair"), 4_000, 0.2, 0.8,
    _vm_draw, _vm_outcomes, _vm_rule,
)  # fmt: skip


# --- storage_seconds: seconds, five actions, a declared hard fault ----------------------------------------
def _st_draw(rng: np.random.Generator, n: int) -> tuple[Signals, dict[str, np.ndarray]]:
    s = {
        "smart_pending": rng.poisson(2.0, n).astype(float),
        "io_latency_ms": np.round(np.exp(rng.normal(1.5, 0.8, n)), 2),
        "iops_drop_pct": np.round(rng.uniform(0, 80, n), 1),
        "daemon_restarts": rng.poisson(0.5, n).astype(float),
        "fw_age_days": np.round(rng.uniform(0, 900, n)),
    }
    return s, {
        "array": rng.choice(np.array(["raid6", "erasure"]), n),
        "disks": rng.integers(12, 90, n).astype(float),
    }


def _st_outcomes(s: Signals, c: dict[str, np.ndarray]) -> np.ndarray:
    disk = _sig(-3 + 0.45 * s["smart_pending"])
    sw = _sig(-2.5 + 0.9 * np.log(s["io_latency_ms"]) + 0.5 * s["daemon_restarts"])
    slow = s["iops_drop_pct"] / 100
    ec = c["array"] == "erasure"
    base = 3000 + 40 * c["disks"]
    wait = (disk + sw + 1.5 * slow) * base
    restart = 120 + (disk + 0.2 * sw + slow) * base
    failover = 1500 + 0.3 * (disk + sw) * base + 0.3 * slow * base
    replace = 1500 + 0.1 * base + (sw + 0.3 * slow) * base
    rebuild = 2500 + 30 * c["disks"] * (1 + ec) + 0.05 * base * (disk + sw)
    return np.column_stack([wait, restart, failover, replace, rebuild])


def _st_rule(s: Signals, c: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    out = np.zeros(len(z), dtype=int)
    out[s["io_latency_ms"] * np.exp(0.2 * z) > 8] = 1
    out[s["iops_drop_pct"] + 10 * z > 60] = 2
    out[s["smart_pending"] >= 5] = 3
    out[(s["smart_pending"] >= 8) & (s["iops_drop_pct"] > 40)] = 4
    return out


def _st_kind(s: Signals, rng: np.random.Generator) -> list[str]:
    dead = rng.random(len(s["smart_pending"])) < 0.02
    return ["disk_dead" if d else "storage_degraded" for d in dead]


STORAGE_ACTIONS = ("wait", "restart_daemon", "failover", "replace_disk", "rebuild_array")
STORAGE = Fleet(
    "storage_seconds", "seconds", STORAGE_ACTIONS, 8_000, 0.1, 1.0, _st_draw, _st_outcomes, _st_rule,
    kind=_st_kind,
    overrides={"kinds": {"disk_dead": "replace_disk"}, "severities": {}},
)  # fmt: skip


# --- network_small: minutes, three actions, 500 events ----------------------------------------------------
def _net_draw(rng: np.random.Generator, n: int) -> tuple[Signals, dict[str, np.ndarray]]:
    s = {
        "crc_errors": np.round(np.exp(rng.normal(3, 1.5, n))),
        "flaps": rng.poisson(1.0, n).astype(float),
        "rx_power_dbm": np.round(rng.normal(-6, 2.5, n), 2),
        "uptime_days": np.round(rng.uniform(1, 700, n)),
    }
    return s, {"vendor": rng.choice(np.array(["a", "b"]), n)}


def _net_outcomes(s: Signals, c: dict[str, np.ndarray]) -> np.ndarray:
    optic = _sig(-2 - 0.8 * (s["rx_power_dbm"] + 8))
    seat = _sig(-3 + 0.4 * np.log1p(s["crc_errors"]) + 0.5 * s["flaps"])
    ignore = 90 * (optic + seat)
    reseat = 8 + 90 * (optic + 0.2 * seat)
    swap = 25 + 15 * (c["vendor"] == "b") + 90 * 0.3 * seat
    return np.column_stack([ignore, reseat, swap])


def _net_rule(s: Signals, c: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    out = np.zeros(len(z), dtype=int)
    out[(s["crc_errors"] * np.exp(0.3 * z) > 100) | (s["flaps"] >= 3)] = 1
    out[s["rx_power_dbm"] < -10] = 2
    return out


NETWORK = Fleet(
    "network_small", "minutes", ("ignore", "reseat", "swap_optic"), 500, 0.15, 0.9,
    _net_draw, _net_outcomes, _net_rule,
)  # fmt: skip


# --- gpu_jobs (validation): GPU-minutes, weak confounding, 5 % overrides -----------------------------------
def _gpu_draw(rng: np.random.Generator, n: int) -> tuple[Signals, dict[str, np.ndarray]]:
    s = {
        "xid_count": rng.poisson(0.7, n).astype(float),
        "nvlink_err": np.round(np.exp(rng.normal(0.5, 1.4, n))),
        "hbm_temp_c": np.round(rng.normal(75, 7, n), 1),
        "throttle_pct": np.round(rng.uniform(0, 40, n), 1),
    }
    return s, {"job_gpus": rng.choice(np.array([8.0, 64.0, 512.0]), n, p=[0.5, 0.35, 0.15])}


def _gpu_outcomes(s: Signals, c: dict[str, np.ndarray]) -> np.ndarray:
    g = np.log2(c["job_gpus"])
    fault = _sig(-2 + 0.9 * s["xid_count"] + 0.4 * np.log1p(s["nvlink_err"]))
    heat = _sig((s["hbm_temp_c"] - 88) / 3)
    loss = 6 * g
    monitor = (fault + heat) * loss * 6
    reset = 3 + loss * 0.4 + (0.3 * fault + heat) * loss * 4
    cordon = 1.5 * loss + 0.2 * (fault + heat) * loss
    rma = 50 + 0.5 * loss
    return np.column_stack([monitor, reset, cordon, rma])


def _gpu_rule(s: Signals, c: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    out = np.zeros(len(z), dtype=int)
    out[s["xid_count"] + z >= 2] = 1
    out[s["hbm_temp_c"] + 3 * z > 88] = 2
    out[s["xid_count"] >= 5] = 3
    return out


GPU_JOBS = Fleet(
    "gpu_jobs", "GPU-minutes", ("monitor", "reset_gpu", "cordon", "rma"), 2_000, 0.05, 0.5,
    _gpu_draw, _gpu_outcomes, _gpu_rule, validation=True,
)  # fmt: skip


# --- edge_mixed (validation): seconds, five actions, 25 % overrides ---------------------------------------
def _edge_draw(rng: np.random.Generator, n: int) -> tuple[Signals, dict[str, np.ndarray]]:
    s = {
        "svc_crashes": rng.poisson(1.2, n).astype(float),
        "disk_full_pct": np.round(rng.uniform(40, 100, n), 1),
        "psu_warn": rng.binomial(1, 0.1, n).astype(float),
        "boot_fail": rng.poisson(0.2, n).astype(float),
        "latency_p99_ms": np.round(np.exp(rng.normal(4, 0.7, n))),
    }
    return s, {"site": rng.choice(np.array(["remote", "metro"]), n, p=[0.3, 0.7])}


def _edge_outcomes(s: Signals, c: dict[str, np.ndarray]) -> np.ndarray:
    remote = c["site"] == "remote"
    svc = _sig(-2 + 0.7 * s["svc_crashes"])
    img = _sig(-4 + 0.08 * (s["disk_full_pct"] - 40) + 1.5 * s["boot_fail"])
    hw = _sig(-4 + 3.5 * s["psu_warn"])
    out = 1800 * (1 + remote)
    noop = (svc + img + hw) * out
    restart = 30 + (0.2 * svc + img + hw) * out
    cycle = 200 + (0.1 * svc + 0.6 * img + hw) * out
    reimage = 900 + (0.05 * img + hw) * out
    tech = 2400 * (1 + 1.5 * remote) + 0.05 * out
    return np.column_stack([noop, restart, cycle, reimage, tech])


def _edge_rule(s: Signals, c: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    out = np.zeros(len(z), dtype=int)
    out[s["svc_crashes"] + z >= 2] = 1
    out[s["latency_p99_ms"] > 150] = 2
    out[(s["disk_full_pct"] > 90) | (s["boot_fail"] >= 1)] = 3
    out[s["psu_warn"] > 0] = 4
    return out


EDGE = Fleet(
    "edge_mixed", "seconds", ("noop", "restart_service", "power_cycle", "reimage", "dispatch_tech"), 12_000,
    0.25, 0.7, _edge_draw, _edge_outcomes, _edge_rule, validation=True,
)  # fmt: skip

FLEETS: dict[str, Fleet] = {f.name: f for f in (BUNDLED, VM_FLEET, STORAGE, NETWORK, GPU_JOBS, EDGE)}
