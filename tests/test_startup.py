"""The embedded default as a user starts it: `foresight serve` on a fresh SQLite file migrates, sets up
the live demo (bundled traces shifted to the present), prints a first admin key that works, and does
none of that twice; the demo's series end in the present and every one of them is forecast."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.helpers import bearer


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(workdir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORESIGHT_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), *extra],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # a generous bound: start-up is slow on a loaded machine
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("foresight serve did not become ready")


def _stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    output, _ = process.communicate(timeout=90)
    return output


def test_embedded_default_first_and_second_start(tmp_path: Path) -> None:
    process, _ = _serve(tmp_path)  # ready means migrated, sample loaded and key printed
    output = _stop(process)
    lines = [line for line in output.splitlines() if line.startswith("fsk_")]
    assert len(lines) == 1, output
    key = lines[0]
    assert (tmp_path / "var" / "foresight.db").exists()

    process, url = _serve(tmp_path)
    try:
        listing = httpx.get(url + "/v1/series?limit=100", headers=bearer(key), timeout=30).json()
        series = {(s["entity_id"], s["metric"]): s["id"] for s in listing["items"]}
        assert ("ec2-24ae8d", "cpu_utilization") in series and ("web", "request_count") in series
        assert ("llm-code", "requests_per_second") in series and ("gpu-rack-1", "power_watts") in series
        assert len(series) == 11
        web = httpx.get(url + f"/v1/series/{series[('web', 'request_count')]}", headers=bearer(key)).json()
        last = datetime.fromisoformat(web["last"])
        assert abs((datetime.now(UTC) - last).total_seconds()) < 600  # the 2014 trace ends in the present
        assert web["samples"] >= 3600  # the history, loaded once, not twice
        assert web["samples"] < 2 * 3600
        deadline = time.monotonic() + 120  # the first small models come within seconds of start
        pending = set(series.values())
        while pending and time.monotonic() < deadline:
            pending = {
                i
                for i in pending
                if httpx.get(
                    url + f"/v1/forecasts?series={i}&horizon=1", headers=bearer(key), timeout=30
                ).status_code
                != 200
            }
            time.sleep(1)
        assert not pending, f"series without a forecast: {pending}"
    finally:
        second_output = _stop(process)
    assert "fsk_" not in second_output  # no second key, the first one still works
