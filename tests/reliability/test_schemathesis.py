"""Schemathesis's own runner (`schemathesis run`) over every operation of the live server's OpenAPI, in
every phase: the schema's examples, coverage (boundary and invalid values of each parameter), fuzzing
(valid and invalid), and stateful (chains of calls along the links schemathesis infers, e.g. a created
key's id into its revocation). The run must end with no 5xx, no request timing out, and every answer
conforming to the documented status codes, content types, headers and schemas (exit code 0).

Bounded for CI: a few examples per operation, a fixed seed (reproducible), one worker, on Postgres (the
Python-driven fuzzer in test_fuzz.py covers both backends; CI refuses a skipped Postgres test). Real
rows are seeded first so the per-resource operations reach them; tests/reliability/schemathesis_hooks.py
keeps the fuzzer's own key from being revoked and trains only the cheap model."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from service.auth import service as auth_service
from service.db import Database
from tests.conftest import LiveServer
from tests.helpers import REPO_ROOT, bearer
from tests.reliability.fuzzing import seed

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
    "response_schema_conformance"
)
MAX_EXAMPLES = 3
REQUEST_TIMEOUT = 60


def test_schemathesis_every_phase(
    live_server: LiveServer, database: Database, backend: str, tmp_path: Path
) -> None:
    if backend != "postgres":
        pytest.skip("one backend is enough for the CLI run (Postgres, as deployed); test_fuzz.py fuzzes both")
    with database.session() as session:
        fuzzer = auth_service.create_key(session, "schemathesis", ["admin"])
    seed(live_server.url, bearer(fuzzer.key))
    command = [
        str(REPO_ROOT / ".venv" / "bin" / "schemathesis"), "run", f"{live_server.url}/openapi.json",
        "--header", f"Authorization: Bearer {fuzzer.key}",
        "--phases", "examples,coverage,fuzzing,stateful", "--checks", CHECKS,
        "--max-examples", str(MAX_EXAMPLES), "--seed", "18", "--workers", "1",
        "--request-timeout", str(REQUEST_TIMEOUT), "--generation-database", "none",
        "--no-color", "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    environment = {
        **os.environ, "SCHEMATHESIS_HOOKS": "tests.reliability.schemathesis_hooks",
        "FORESIGHT_FUZZ_PROTECTED_KEY": str(fuzzer.id), "PYTHONPATH": str(REPO_ROOT),
    }  # fmt: skip
    run = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=900, check=False
    )
    summary = run.stdout[run.stdout.rfind("SUMMARY") :]
    print(summary)  # the figures (cases, phases, warnings), shown with pytest -s
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", summary)
    assert selected and selected.group(1) == selected.group(2), summary  # every operation
    assert "Network Error" not in summary and "timed out" not in run.stdout, summary
    assert "Authentication failed" not in summary, summary  # the fuzzer's key was never revoked
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, summary
