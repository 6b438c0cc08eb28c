"""Fixtures of the integration tests: a Foresight server whose database is unreachable, and the real
Prometheus + node-exporter (Debian packages, installed with apt-get when missing; when that is impossible
the tests fail under FORESIGHT_REQUIRE_POSTGRES=1, as in CI, and skip otherwise)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REQUIRE_POSTGRES, LiveServer, settings_for
from tests.integrations.helpers import eventually

PACKAGES = {"prometheus": "prometheus", "prometheus-node-exporter": "prometheus-node-exporter"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def closed_port_server() -> Iterator[str]:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/foresight"
    server = LiveServer(settings_for(url, db_connect_timeout_seconds=2, retry_after_seconds=7)).start()
    yield server.url
    server.stop()


def _apt_install(names: list[str]) -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", *names]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:  # the package lists may be missing or stale on a fresh machine
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600, check=False)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
    return done.stderr[-2000:]


@pytest.fixture(scope="session")
def prometheus_binaries() -> dict[str, str]:
    """Paths of `prometheus` and `prometheus-node-exporter`, installing the Debian packages if needed."""
    missing = [package for binary, package in PACKAGES.items() if shutil.which(binary) is None]
    why = ""
    if missing and shutil.which("apt-get") and os.geteuid() == 0:
        why = _apt_install(missing)
    found = {binary: shutil.which(binary) for binary in PACKAGES}
    absent = [binary for binary, path in found.items() if path is None]
    if absent:
        message = f"{', '.join(absent)} not installed and apt-get could not install it: {why or 'not root'}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    return {binary: str(path) for binary, path in found.items()}


class Process:
    """A child process started by a test, stopped (by its own handle) at the end."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.handle = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.handle.poll() is None:
            self.handle.terminate()
            try:
                self.handle.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.handle.kill()
                self.handle.wait(timeout=15)

    def wait_http(self, url: str, what: str, timeout: float = 180) -> None:
        def ready() -> bool:
            if self.handle.poll() is not None:
                raise AssertionError(f"{what} exited: {self.log.read_text()[-2000:]}")
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(ready, f"{what} at {url}", timeout=timeout, interval=0.1)


@pytest.fixture(scope="session")
def node_exporter(
    prometheus_binaries: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """node-exporter on a port of its own, with a few collectors (enough series, little volume)."""
    port = free_port()
    collectors = ["cpu", "loadavg", "meminfo", "netdev", "time", "uname", "stat", "filesystem"]
    args = [
        prometheus_binaries["prometheus-node-exporter"],
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        *(f"--collector.{name}" for name in collectors),
    ]
    process = Process(args, tmp_path_factory.mktemp("node-exporter") / "log")
    try:
        process.wait_http(f"http://127.0.0.1:{port}/metrics", "node-exporter")
        yield f"127.0.0.1:{port}"
    finally:
        process.stop()
