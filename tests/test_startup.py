"""The embedded default as a user starts it: `foresight serve` on a fresh SQLite file migrates, loads the
bundled sample trace, prints a first admin key that works, and does none of that twice."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
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
        listing = httpx.get(url + "/v1/series", headers=bearer(key), timeout=30).json()
        series = {(s["entity_id"], s["metric"]) for s in listing["items"]}
        assert ("ec2-24ae8d", "cpu_utilization") in series and len(series) == 5
        detail = httpx.get(
            url + f"/v1/series/{listing['items'][0]['id']}", headers=bearer(key), timeout=30
        ).json()
        assert detail["samples"] == 4032
    finally:
        second_output = _stop(process)
    assert "fsk_" not in second_output  # no second key, the first one still works
