"""`foresight serve --workers 2`: start-up work happens once (one key printed, before the workers), and
/metrics counts the requests of every worker, whichever worker answers the scrape."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import T0, batch, bearer, series
from tests.test_startup import _serve, _stop


def _total(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def _printed_key(process: subprocess.Popen[str]) -> str:
    """The first admin key: printed by the parent before the workers start, so already in the pipe."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("fsk_"):
            return line.strip()
    raise AssertionError("no key printed")


def test_two_workers_share_metrics_and_start_once(tmp_path: Path) -> None:
    process, url = _serve(tmp_path, "--workers", "2")
    try:
        key = _printed_key(process)
        with httpx.Client(base_url=url, timeout=30) as http:
            for round_no in range(20):
                body = batch(series(samples=[[T0 + 10 * round_no + i, 1.0] for i in range(5)]))
                answer = http.post("/v1/telemetry", json=body, headers=bearer(key))
                assert answer.status_code == 200, answer.text
            for _ in range(4):  # every scrape, from either worker, sees all 20 requests
                scrape = http.get("/metrics").text
                assert _total(scrape, "foresight_ingested_samples_total") == 100
                assert (
                    _total(scrape, "foresight_http_requests_total", route="/v1/telemetry", status="200") == 20
                )
    finally:
        rest = _stop(process)
    assert "fsk_" not in rest  # one key in all: start-up work did not run again per worker
