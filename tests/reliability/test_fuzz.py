"""Schemathesis over every operation of the live server's own OpenAPI, on SQLite and Postgres, with a
small fixed budget (derandomized, so a failure reproduces): no 5xx, only documented status codes and
content types, every body matching its documented schema. bench/fuzz.py runs the same with a larger one."""

from __future__ import annotations

import httpx
import pytest

from service.auth import service as auth_service
from service.db import Database
from tests.conftest import LiveServer
from tests.helpers import bearer
from tests.reliability.fuzzing import fuzz, seed

EXAMPLES = 8  # per operation and mode (valid, invalid): ~600 cases per backend
# A positive training case would fit LightGBM for seconds; the cheap model keeps the budget small while
# every other field of the body is still generated.
CHEAP_TRAINING = {"POST /v1/models/train": {"model": "seasonal_naive", "backtest": False}}


# ~600 HTTP cases take 2-3 minutes on a quiet 2-core machine and grow with its load (>300 s at a load of 5):
# the case budget is fixed, so the suite-wide 300 s timeout is raised here rather than the budget cut.
@pytest.mark.timeout(900)
def test_fuzz_every_operation(live_server: LiveServer, database: Database, client: httpx.Client) -> None:
    with database.session() as session:
        fuzzer = auth_service.create_key(session, "fuzzer", ["admin"])
    known = seed(live_server.url, bearer(fuzzer.key))
    report = fuzz(
        live_server.url, fuzzer.key, examples=EXAMPLES, known=known, protected_key_ids=(fuzzer.id,),
        body_overrides=CHEAP_TRAINING,
    )  # fmt: skip
    summary = [
        f"{f.operation} [{f.mode}] {f.status}: {f.problem[:600]}\n{f.reproduce}" for f in report.failures
    ]
    assert not report.failures, "\n\n".join(summary[:10])
    operations = {
        f"{method.upper()} {path}"
        for path, item in client.get("/openapi.json").json()["paths"].items()
        for method in item
    }
    assert set(report.cases) == operations, operations ^ set(report.cases)
    assert all(report.cases[label] >= 1 for label in operations)
    reachable = [
        label for label in report.statuses if any(200 <= code < 300 for code in report.statuses[label])
    ]
    assert len(reachable) >= len(operations) // 2, reachable  # the seeded rows were reached, not only 404s
    assert client.get("/readyz").status_code == 200
    assert client.get("/v1/series", headers=bearer(fuzzer.key)).status_code == 200
