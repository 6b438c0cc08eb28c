"""Power recommendations through real HTTP on both backends: a domain with two priority classes and power
telemetry; without a forecast the reactive rule answers and says why (still a 201 Decision); with a trained
forecaster on the domain total the chance-constrained plan answers with its quantiles; the hysteresis count
travels from one decision to the next; oversubscription; energy mode; clear 404 / 409 / 422 answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import text

from service.db import Database
from service.power import domain as domains
from tests.helpers import T0, batch, bearer, series

STEP = 300
COUNT = 3 * 288
END = T0 + STEP * (COUNT - 1)
Keys = dict[str, dict[str, str]]


@pytest.fixture
def keys(make_key: Callable[..., str]) -> Keys:
    return {
        scope: bearer(make_key(scope, name=f"{scope}-key"))
        for scope in ("ingest", "read", "operate", "admin")
    }


def _ingest(client: httpx.Client, keys: Keys, *items: dict[str, Any]) -> None:
    answer = client.post("/v1/telemetry", json=batch(*items), headers=keys["ingest"])
    assert answer.status_code == 200, answer.text


def _budget(client: httpx.Client, keys: Keys, watts: float, name: str = "rack-1") -> None:
    body = {"cluster": "west", "budget_watts": watts}
    assert client.put(f"/v1/power-domains/{name}", json=body, headers=keys["admin"]).status_code == 200


def _node(
    client: httpx.Client, keys: Keys, name: str, domain: str = "rack-1", **hardware: Any
) -> httpx.Response:
    hw = {"profile": "a100", "gpus": 8, "priority": 0, "host_watts": 500.0} | hardware
    body = {"cluster": "west", "pool": "gpu", "power_domain": domain, "hardware": hw}
    return client.put(f"/v1/nodes/{name}", json=body, headers=keys["admin"])


@pytest.fixture
def domain(client: httpx.Client, keys: Keys) -> None:
    """rack-1: two priority-1 and two priority-0 A100 servers measuring 11 900 W in all; budget 12 500 W.

    lo-2 reports per-GPU power only (8 x 300 W + 500 W host), the others whole-node power."""
    _budget(client, keys, 12_500)
    for name, priority in (("hi-1", 1), ("hi-2", 1), ("lo-1", 0), ("lo-2", 0)):
        assert _node(client, keys, name, priority=priority).status_code == 200
    readings = [
        series(n, "node_power_watts", samples=[[END - 60, 2950.0], [END, 3000.0]])
        for n in ("hi-1", "hi-2", "lo-1")
    ]
    gpus = [
        series("lo-2", "gpu_power_watts", samples=[[END, 300.0]], labels={"gpu": str(g)}) for g in range(8)
    ]
    _ingest(client, keys, *readings, *gpus)


def _total_series(level: float) -> dict[str, Any]:
    t = T0 + STEP * np.arange(COUNT)
    rng = np.random.default_rng(7)
    values = level + 300 * np.sin(2 * np.pi * (t - T0) / 86400) + rng.normal(0, 40, COUNT)
    samples = [[int(a), round(float(b), 2)] for a, b in zip(t, values, strict=True)]
    return series("rack-1", "power_watts", samples=samples, kind="power_domain")


def _train(client: httpx.Client, keys: Keys, kind: str) -> None:
    body = {"model": "seasonal_naive", "entity_kind": kind}
    trained = client.post("/v1/models/train", json=body, headers=keys["operate"])
    assert trained.status_code == 201, trained.text


def _power(client: httpx.Client, keys: Keys, mode: str | None = None, **body: Any) -> httpx.Response:
    if mode is not None:  # the domain's own mode decides how its decisions are recorded
        answer = client.put(
            "/v1/power-domains/rack-1", json={"cluster": "west", "mode": mode}, headers=keys["admin"]
        )
        assert answer.status_code == 200 and answer.json()["mode"] == mode
    return client.post("/v1/recommendations/power", json={"domain": "rack-1"} | body, headers=keys["operate"])


def _oversub(client: httpx.Client, keys: Keys, **query: Any) -> httpx.Response:
    params = {"domain": "rack-1", "profile": "a100", "gpus": 8, "priority": 0} | query
    return client.get("/v1/recommendations/oversubscription", params=params, headers=keys["operate"])


def test_without_a_forecast_the_reactive_rule_caps_low_priority_and_says_why(
    client: httpx.Client, keys: Keys, domain: None
) -> None:
    answer = _power(client, keys, mode="approve")
    assert answer.status_code == 201, answer.text
    decision = answer.json()
    assert decision["kind"] == "power" and decision["target_kind"] == "power_domain"
    assert decision["target_name"] == "rack-1" and decision["cluster"] == "west"
    assert decision["status"] == "proposed" and decision["mode"] == "approve"
    reason = decision["explanation"]["fallback_reason"]
    assert reason.startswith("no forecast of the domain total") and "power_watts" in reason
    details = decision["explanation"]["details"]
    assert details["inputs"]["power_watts_now"] == {
        "hi-1": 3000.0,
        "hi-2": 3000.0,
        "lo-1": 3000.0,
        "lo-2": 2900.0,
    }
    assert decision["explanation"]["forecast"]["measured_total_watts"] == 11_900.0
    assert decision["action"] == "cap" and decision["params"]["stage"] == "T1"
    limits = decision["params"]["power_limits_watts"]
    assert limits["hi-1"] is None and limits["hi-2"] is None
    assert limits["lo-1"] is not None and limits["lo-2"] is not None


def test_forecast_driven_decision_shows_the_quantiles(client: httpx.Client, keys: Keys, domain: None) -> None:
    _ingest(client, keys, _total_series(11_700))
    _train(client, keys, "power_domain")
    answer = _power(client, keys, horizon=6)
    assert answer.status_code == 201, answer.text
    decision = answer.json()
    evidence = decision["explanation"]
    assert evidence["fallback_reason"] is None, evidence["fallback_reason"]
    assert decision["policy"] == "power_polca" and decision["mode"] == "shadow"
    demand = evidence["forecast"]["demand_total"]
    assert demand["steps"] == 6 and demand["step_seconds"] == STEP
    assert set(demand["quantiles"]) == {"q0.1", "q0.5", "q0.9", "q0.99"}
    assert evidence["details"]["inputs"]["total_series_id"] is not None
    # ~11.7 kW against T1 = 0.9 x 12.5 kW: the low-priority class is capped, the high one is not
    assert decision["action"] == "cap"
    limits = decision["params"]["power_limits_watts"]
    assert limits["hi-1"] is None and limits["lo-1"] is not None
    assert evidence["details"]["capped_by_priority"]["0"] == 2
    assert len(evidence["candidates"]) > 3


def test_hysteresis_state_is_carried_between_decisions(
    client: httpx.Client, keys: Keys, domain: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _power(client, keys, mode="approve").json()
    assert first["action"] == "cap"
    for step in ("approve", "apply"):
        assert client.post(f"/v1/decisions/{first['id']}/{step}", headers=keys["operate"]).status_code == 200
    _budget(client, keys, 20_000)  # now far below T_uncap: relaxing is wanted, after 3 calm windows
    # asked again within one window, the count does not advance (repeats cannot skip the hysteresis)
    again = [_power(client, keys).json()["explanation"]["details"]["calm_windows"] for _ in range(2)]
    assert again == [1, 1]
    monkeypatch.setattr(domains, "SAME_WINDOW_SECONDS", 0.0)  # every request is a new window from here
    seen = []
    for expected_calm in (2, 3):
        decision = _power(client, keys, mode="approve").json()
        details = decision["explanation"]["details"]
        assert details["inputs"]["caps_from_decision"] == first["id"]
        assert details["inputs"]["calm_windows_in"] == expected_calm - 1
        assert details["calm_windows"] == expected_calm
        seen.append(decision["action"])
    assert seen == ["hold", "uncap"]
    held = client.get(
        "/v1/decisions", params={"kind": "power", "status": "proposed"}, headers=keys["read"]
    ).json()
    assert held["total"] == 4
    guard = held["items"][-1]["explanation"]["guardrails"]
    assert guard and guard[0]["name"] == "uncap_hysteresis"
    monkeypatch.setattr(domains, "CALM_LOOKBACK", timedelta(0))  # a count too old to trust restarts at 0
    stale = _power(client, keys).json()["explanation"]["details"]["inputs"]
    assert stale["calm_windows_in"] == 0 and stale["calm_windows_from_decision"] is None


def test_auto_mode_applies_and_decisions_are_listed(client: httpx.Client, keys: Keys, domain: None) -> None:
    auto = _power(client, keys, mode="auto").json()
    assert auto["status"] == "applied" and auto["actor"] == "foresight:auto"
    later = _power(client, keys).json()
    assert later["explanation"]["details"]["inputs"]["caps_from_decision"] == auto["id"]
    assert later["action"] == "hold"  # the caps are already in force
    log = client.get("/v1/decisions", params={"kind": "power"}, headers=keys["read"]).json()
    assert log["total"] == 2 and {d["id"] for d in log["items"]} == {auto["id"], later["id"]}
    reactive = _power(client, keys, policy="power_reactive")
    assert reactive.status_code == 201 and reactive.json()["policy"] == "power_reactive"


def test_oversubscription_with_and_without_a_forecast(client: httpx.Client, keys: Keys, domain: None) -> None:
    _budget(client, keys, 30_000)
    plain = _oversub(client, keys)
    assert plain.status_code == 200, plain.text
    decision = plain.json()
    assert decision["kind"] == "oversubscription" and decision["target_name"] == "rack-1"
    assert "nameplate sizing" in decision["explanation"]["fallback_reason"]
    nameplate = decision["explanation"]["details"]["nameplate_extra"]
    assert decision["params"]["extra_servers"] == nameplate >= 1
    assert decision["explanation"]["details"]["new_server"]["profile"] == "a100"

    _ingest(client, keys, _total_series(11_700))
    _train(client, keys, "power_domain")
    answer = _oversub(client, keys, horizon=24)
    assert answer.status_code == 200, answer.text
    forecasted = answer.json()
    assert forecasted["explanation"]["fallback_reason"] is None
    params = forecasted["params"]
    assert params["extra_servers"] >= params["extra_servers_without_capping"] >= nameplate
    assert forecasted["explanation"]["forecast"]["demand_total"]["steps"] == 24
    log = client.get("/v1/decisions", params={"kind": "oversubscription"}, headers=keys["read"]).json()
    assert log["total"] == 0 and forecasted["id"] == 0  # a GET answers and writes nothing
    question = {"domain": "rack-1", "profile": "a100", "gpus": 8, "horizon": 24}
    recorded = client.post("/v1/recommendations/oversubscription", json=question, headers=keys["operate"])
    assert recorded.status_code == 201
    assert recorded.json()["params"]["extra_servers"] == params["extra_servers"]
    log = client.get("/v1/decisions", params={"kind": "oversubscription"}, headers=keys["read"]).json()
    assert log["total"] == 1 and log["items"][0]["id"] == recorded.json()["id"] > 0


def test_missing_telemetry_is_stated_not_an_error(client: httpx.Client, keys: Keys) -> None:
    _budget(client, keys, 12_500)
    assert _node(client, keys, "quiet", priority=1).status_code == 200
    assert _node(client, keys, "half", priority=0).status_code == 200
    _ingest(
        client,
        keys,
        *[
            series("half", "gpu_power_watts", samples=[[END, 200.0]], labels={"gpu": str(g)})
            for g in range(3)
        ],
    )
    answer = _power(client, keys)
    assert answer.status_code == 201, answer.text
    evidence = answer.json()["explanation"]
    assert evidence["details"]["inputs"]["power_watts_now"] == {"half": None, "quiet": None}
    assert any("only 3 of 8 GPUs" in note for note in evidence["details"]["notes"])


def test_bad_requests_are_clear(client: httpx.Client, keys: Keys, domain: None, database: Database) -> None:
    missing = _power(client, keys, domain="nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    assert _oversub(client, keys, domain="nope").status_code == 404

    assert _node(client, keys, "orphan", domain="rack-2").status_code == 200  # creates rack-2 without budget
    no_budget = _power(client, keys, domain="rack-2")
    assert no_budget.status_code == 409
    assert "PUT /v1/power-domains/rack-2" in no_budget.json()["error"]["message"]
    _budget(client, keys, 5000, name="empty")
    no_nodes = _power(client, keys, domain="empty")
    assert no_nodes.status_code == 409 and "PUT /v1/nodes" in no_nodes.json()["error"]["message"]

    bad_query = _oversub(client, keys, profile="tpu")
    assert bad_query.status_code == 422 and bad_query.json()["error"]["details"][0]["loc"] == [
        "query",
        "profile",
    ]
    assert _oversub(client, keys, gpus=0).status_code == 422
    assert _power(client, keys, epsilon=0.7).status_code == 422
    unknown = _power(client, keys, policy="magic")
    assert unknown.status_code == 422 and "power_polca" in unknown.json()["error"]["message"]

    # bad hardware is refused when it is written, naming the field (issue 18)
    bad_profile = _node(client, keys, "lo-1", priority=0, profile="tpu")
    assert bad_profile.status_code == 422 and "hardware.profile" in bad_profile.json()["error"]["message"]
    bad_gpus = _node(client, keys, "lo-1", profile="a100", gpus="eight")
    assert bad_gpus.status_code == 422 and "hardware.gpus" in bad_gpus.json()["error"]["message"]
    # hardware stored before that check is still refused by the power decision, naming the field
    assert _node(client, keys, "lo-1", priority=0).status_code == 200
    with database.engine.begin() as connection:
        stored = """UPDATE nodes SET hardware = '{"profile": "tpu", "gpus": 8}' WHERE name = 'lo-1'"""
        connection.execute(text(stored))
    bad_node = _power(client, keys)
    assert bad_node.status_code == 422
    assert bad_node.json()["error"]["details"][0]["loc"] == ["nodes", "lo-1", "hardware", "profile"]


@pytest.fixture
def llm(client: httpx.Client, keys: Keys) -> None:
    t = T0 + STEP * np.arange(COUNT)
    rate = 4 + 2 * np.sin(2 * np.pi * (t - T0) / 86400)
    samples = [[int(a), round(float(b), 3)] for a, b in zip(t, rate, strict=True)]
    _ingest(client, keys, series("chat", "requests_per_second", "req/s", samples, kind="workload"))
    slo = {
        "prompt_tokens": 512,
        "output_tokens": 256,
        "ttft_slo_ms": 5000,
        "tbt_slo_ms": 200,
        "max_gpus": 64,
    }
    body = {"cluster": "west", "mode": "approve", "slo": slo}
    assert client.put("/v1/workloads/chat", json=body, headers=keys["admin"]).status_code == 200


def test_energy_mode(client: httpx.Client, keys: Keys, llm: None) -> None:
    def ask(**body: Any) -> httpx.Response:
        return client.post(
            "/v1/recommendations/energy", json={"workload": "chat"} | body, headers=keys["operate"]
        )

    fallback = ask()
    assert fallback.status_code == 201, fallback.text
    assert "no request-rate forecast" in fallback.json()["explanation"]["fallback_reason"]
    assert fallback.json()["params"]["gpus"] <= 64 and fallback.json()["mode"] == "approve"
    _train(client, keys, "workload")
    answer = ask()
    assert answer.status_code == 201, answer.text
    decision = answer.json()
    assert decision["kind"] == "energy" and decision["action"] == "configure"
    assert decision["explanation"]["forecast"]["load_quantile"] == 0.95
    assert decision["explanation"]["fallback_reason"] is None
    assert decision["params"]["ttft_ms"] <= 5000 and decision["params"]["tbt_ms"] <= 200
    assert decision["explanation"]["details"]["load_series_id"] is not None
    bad = ask(hardware="tpu-v5")
    assert bad.status_code == 422 and "hardware" in bad.json()["error"]["message"]
    assert (
        client.put("/v1/workloads/bare", json={"cluster": "west"}, headers=keys["admin"]).status_code == 200
    )
    missing = client.post("/v1/recommendations/energy", json={"workload": "bare"}, headers=keys["operate"])
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0]["loc"] == ["body", "prompt_tokens"]
