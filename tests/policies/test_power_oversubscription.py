"""Oversubscription answer and energy mode."""

from __future__ import annotations

from dataclasses import replace

import pytest

from policies.energy import EnergyInput, EnergyModePolicy
from policies.oversubscription import OversubscriptionInput, OversubscriptionPolicy
from policies.power_model import ServerState
from policies.types import InvalidPolicyInput
from tests.policies.examples_power import HOST_W, domain, normal_forecast

NEW = ServerState("new", 0, "a100", 8, None, HOST_W)


def answer(eps: float = 0.01, sd: float = 2500.0, **kw):
    inp = OversubscriptionInput(domain(24_000, sd=sd, budget=46_800.0, epsilon=eps), NEW)
    return OversubscriptionPolicy(**kw).decide(inp)


def test_extra_servers_sit_exactly_at_the_risk_edge():
    d = answer()
    k = d.params["extra_servers_without_capping"]
    risk = {c.params["extra_servers"]: c.risk for c in d.candidates if not c.params["capping"]}
    assert k > 0 and risk[k] <= 0.01
    assert min(v for kk, v in risk.items() if kk > k) > 0.01
    assert d.details["nameplate_extra"] == 0  # 12 x 3.9 kW nameplate already fills 46.8 kW


def test_capping_headroom_holds_at_least_as_many_servers():
    d = answer()
    assert d.params["extra_servers"] >= d.params["extra_servers_without_capping"]
    no_loss = answer(max_expected_loss=0.0)
    assert no_loss.params["extra_servers"] == no_loss.params["extra_servers_without_capping"]


def test_more_risk_or_less_spread_admits_more_servers():
    assert answer(eps=0.05).params["extra_servers"] >= answer(eps=0.01).params["extra_servers"]
    assert answer(sd=500.0).params["extra_servers"] > answer(sd=4000.0).params["extra_servers"]


def test_over_budget_domain_is_reported():
    d = OversubscriptionPolicy().decide(
        OversubscriptionInput(domain(40_000, sd=2500.0, budget=36_000.0), NEW)
    )
    assert d.action == "over_budget" and d.params["extra_servers"] == 0


def test_oversubscription_falls_back_to_nameplate_sizing():
    inp = OversubscriptionInput(replace(domain(10_000, budget=60_000.0), total_forecast=None), NEW)
    d = OversubscriptionPolicy().decide(inp)
    assert d.fallback_reason and d.params["extra_servers"] == (60_000 - 12 * 3900) // 3900


def slo_input(rate: float = 3.0, tbt: float = 100.0, ttft: float = 2000.0, gpus: int = 64, **kw):
    return EnergyInput("llama", normal_forecast(rate, 0.2 * rate), 1500, 250, ttft, tbt, gpus, **kw)


def test_energy_mode_meets_the_slos_and_beats_uncapped():
    d = EnergyModePolicy().decide(slo_input())
    p = d.params
    assert p["tbt_ms"] <= 100 and p["ttft_ms"] <= 2000 and p["gpus"] <= 64
    assert d.details["energy_saving_vs_best_uncapped"] >= 0.0
    assert all(d.candidates[0].expected_cost <= c.expected_cost for c in d.candidates if c.feasible)


def test_energy_mode_scales_instances_with_load_and_tightens_with_the_slo():
    low, high = EnergyModePolicy().decide(slo_input(1.0)), EnergyModePolicy().decide(slo_input(6.0, gpus=256))
    assert high.params["gpus"] > low.params["gpus"]
    loose = EnergyModePolicy().decide(slo_input(tbt=50.0, ttft=1200.0, gpus=128))
    tight = EnergyModePolicy().decide(slo_input(tbt=47.0, ttft=1000.0, gpus=128))
    assert (
        tight.fallback_reason is None and tight.params["tbt_ms"] <= 47.0 and tight.params["ttft_ms"] <= 1000.0
    )
    # a tighter token-latency SLO buys speed with a higher GPU power limit
    assert tight.params["power_limit_watts"] > loose.params["power_limit_watts"]


def test_energy_mode_fallbacks():
    none = EnergyModePolicy().decide(EnergyInput("llama", None, 1500, 250, 2000, 100, 64))
    assert none.fallback_reason and none.params["gpus"] == 64
    impossible = EnergyModePolicy().decide(slo_input(tbt=5.0))
    assert impossible.fallback_reason and "no configuration" in impossible.fallback_reason


def test_energy_input_validation_names_the_field():
    with pytest.raises(InvalidPolicyInput, match="tbt_slo_ms"):
        slo_input(tbt=-1.0)
    with pytest.raises(InvalidPolicyInput, match="hardware"):
        slo_input(hardware="tpu")
