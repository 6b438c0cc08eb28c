"""The fuzz runner shared by tests/reliability/test_fuzz.py (small budget) and bench/fuzz.py (large one).

Schemathesis reads the live server's own OpenAPI and generates cases for every operation, valid
(positive) and invalid (negative); each answer must not be a 5xx, must use a documented status code and
content type, and must match its documented schema; invalid input must be refused with a 4xx. Hypothesis
runs derandomized (the seed is a function of the test), without an example database, so a run is
reproducible. Every failure is collected rather than raised, so one run reports every endpoint.

Invalid input the service accepts anyway (see LENIENCY_CHECKS) is counted separately.

"Stateful where it helps": before fuzzing, `seed` creates real rows (series, workloads, nodes, power
domains, node events, decisions in approve mode, a spare key) and their ids are mixed into the path
parameters, so approve/reject/apply/outcome, revoke and the per-resource reads reach existing rows and
their state transitions rather than only 404s.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
    response_schema_conformance,
]  # fmt: skip
# Invalid input that was accepted anyway is reported, not failed: pydantic's lax mode turns JSON `true` into
# 1 for numeric fields on purpose, and the fuzzer's "invalid" cases include such values.
LENIENCY_CHECKS = [negative_data_rejection]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
T0 = 1_731_780_000


@dataclass
class Failure:
    operation: str
    mode: str
    status: int | None
    problem: str
    reproduce: str


@dataclass
class FuzzReport:
    """Cases run and failures, per operation label (`GET /v1/series/{series_id}`)."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    durations: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    lenient: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases_total": self.total,
            "failures_total": len(self.failures),
            "operations": len(self.cases),
            "seconds": round(self.seconds, 1),
            "per_operation": {
                label: {
                    "cases": self.cases[label],
                    "statuses": {str(k): v for k, v in sorted(self.statuses.get(label, Counter()).items())},
                    "failures": sum(1 for f in self.failures if f.operation == label),
                    "seconds": round(self.durations[label], 2),
                }
                for label in sorted(self.cases)
            },
            "failures": [f.__dict__ for f in self.failures],
            "lenient_acceptances": len(self.lenient),
            "lenient_examples": [f.__dict__ for f in self.lenient[:20]],
        }


def seed(base_url: str, headers: dict[str, str]) -> dict[str, list[Any]]:
    """Real rows for the fuzzer to reach: their path-parameter values by parameter name."""
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:

        def ok(answer: httpx.Response) -> dict[str, Any]:
            assert answer.status_code < 300, (answer.request.url, answer.status_code, answer.text)
            body: dict[str, Any] = answer.json()
            return body

        samples = [[T0 + 300 * i, 40.0 + (i % 12)] for i in range(48)]
        ok(http.post("/v1/telemetry", json={"series": [
            {"entity": {"kind": "workload", "id": "web", "cluster": "west"}, "metric": "requests",
             "unit": "req/s", "samples": samples},
            {"entity": {"kind": "node", "id": "n1", "cluster": "west"}, "metric": "gpu_power_watts",
             "unit": "W", "samples": [[t, v * 5] for t, v in samples]},
        ]}))  # fmt: skip
        ok(http.put("/v1/workloads/web", json={
            "cluster": "west", "replicas": 3, "replica_capacity": 20, "capacity_metric": "requests",
            "mode": "approve",
        }))  # fmt: skip
        ok(http.put("/v1/power-domains/rack-1", json={"cluster": "west", "budget_watts": 10000}))
        ok(http.put("/v1/nodes/n1", json={"cluster": "west", "pool": "gpu", "power_domain": "rack-1"}))
        ok(http.post("/v1/nodes/n1/events", json={"cluster": "west", "kind": "ecc_errors"}))
        decisions = [
            ok(http.post("/v1/recommendations/scaling", json={"workload": "web", "cluster": "west"}))["id"]
            for _ in range(3)
        ]
        spare = ok(http.post("/v1/keys", json={"name": "fuzz-spare", "scopes": ["read"]}))
        series = ok(http.get("/v1/series"))["items"]
    return {
        "series_id": [row["id"] for row in series],
        "decision_id": decisions,
        "key_id": [spare["id"]],
        "name": ["web", "n1", "rack-1"],
    }


def fuzz(
    base_url: str,
    admin_key: str,
    *,
    examples: int,
    known: dict[str, list[Any]] | None = None,
    protected_key_ids: tuple[int, ...] = (),
    only: set[str] | None = None,
    body_overrides: dict[str, dict[str, Any]] | None = None,
) -> FuzzReport:
    """Fuzz every operation of the server's OpenAPI with `examples` cases per operation and mode."""
    started = time.perf_counter()
    auth = {"Authorization": f"Bearer {admin_key}"}
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=30)
    report = FuzzReport()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            if only is not None and label not in only:
                continue
            report.statuses.setdefault(label, Counter())
            operation_started = time.perf_counter()
            for mode in MODES:
                _fuzz_operation(
                    operation,
                    mode,
                    examples,
                    base_url,
                    session,
                    auth,
                    known or {},
                    protected_key_ids,
                    report,
                    (body_overrides or {}).get(label, {}),
                )
            report.durations[label] += time.perf_counter() - operation_started
    report.seconds = time.perf_counter() - started
    return report


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    base_url: str,
    session: requests.Session,
    auth: dict[str, str],
    known: dict[str, list[Any]],
    protected_key_ids: tuple[int, ...],
    report: FuzzReport,
    body_override: dict[str, Any],
) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    path_names = [p.name for p in operation.path_parameters]
    reachable = {name: known[name] for name in path_names if known.get(name)}

    @settings(
        max_examples=examples, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
    )  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode, headers=auth), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        if reachable and mode is GenerationMode.POSITIVE and data.draw(st.booleans()):
            for name, values in reachable.items():
                case.path_parameters[name] = data.draw(st.sampled_from(values))
        if body_override and mode is GenerationMode.POSITIVE and isinstance(case.body, dict):
            case.body.update(body_override)
        if case.path_parameters.get("key_id") in protected_key_ids:
            case.path_parameters["key_id"] = -1  # never revoke the fuzzer's own key
        report.cases[label] += 1
        try:
            response = case.call(base_url=base_url, session=session, headers=auth, timeout=120)
        except requests.RequestException as error:
            report.failures.append(Failure(label, mode.value, None, f"transport: {error}", ""))
            return
        report.statuses[label][response.status_code] += 1
        for checks, found in ((CHECKS, report.failures), (LENIENCY_CHECKS, report.lenient)):
            try:
                case.validate_response(response, checks=checks, headers=auth)
            except (FailureGroup, Exception) as error:  # a group of check failures, or one
                found.append(
                    Failure(
                        label, mode.value, response.status_code, str(error)[:2000], case.as_curl_command()
                    )
                )

    # Unsatisfiable: nothing to negate (no parameters, no body); the positive cases suffice
    with contextlib.suppress(Unsatisfiable):
        run()
