"""A private, throw-away Postgres cluster for fault tests and benches: `initdb` into a scratch directory,
started, stopped and restarted with `pg_ctl` on its own port, so an outage can be staged without ever
touching the shared cluster on 5432. As root it runs the server as the `postgres` user (initdb refuses
root). Missing binaries raise `ClusterUnavailable`; tests decide whether that skips or fails."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import psycopg

SEARCH_GLOB = "/usr/lib/postgresql/*/bin"
RUN_AS = "postgres"


class ClusterUnavailable(RuntimeError):
    """initdb / pg_ctl (or a user to run them as) cannot be found on this machine."""


def find_binaries() -> Path:
    """The bin directory of the newest installed Postgres that has initdb and pg_ctl."""
    candidates = sorted(Path("/").glob(SEARCH_GLOB.lstrip("/")), key=_version_key, reverse=True)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).resolve().parent
    raise ClusterUnavailable(f"initdb and pg_ctl not found under {SEARCH_GLOB} or on PATH")


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgCluster:
    """One scratch cluster: `create()` then `start()`; `stop(mode)` / `start()` stage an outage;
    `destroy()` stops it (immediately) and removes its directory."""

    def __init__(self, port: int | None = None) -> None:
        self.bin = find_binaries()
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="foresight-pgcluster-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(RUN_AS)
            except KeyError as error:
                raise ClusterUnavailable(f"running as root and there is no {RUN_AS!r} user") from error
            if not shutil.which("runuser"):
                raise ClusterUnavailable("running as root and `runuser` is missing")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._prefix = ["runuser", "-u", RUN_AS, "--"]

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [*self._prefix, *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done

    def create(self) -> PgCluster:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        return self

    def start(self) -> None:
        """Start and wait until it accepts connections (pg_ctl -w), then until a query succeeds."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            "-c max_connections=120 -c shared_buffers=32MB"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                with self.connect():
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """`fast` (clean shutdown, sessions terminated) or `immediate` (like a crash: recovery on start)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def is_running(self) -> bool:
        command = [*self._prefix, str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True,
            connect_timeout=3,
        )  # fmt: skip

    def create_database(self, name: str) -> str:
        """A new database; returns its SQLAlchemy URL."""
        with self.connect() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def destroy(self) -> None:
        try:
            if self.data.exists() and self.is_running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        try:
            self.create().start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()


def cluster_for_tests() -> Iterator[PgCluster]:
    """A started cluster for a pytest fixture: missing binaries skip locally and fail in CI
    (FORESIGHT_REQUIRE_POSTGRES=1), like every other Postgres test."""
    import pytest

    try:
        cluster = PgCluster()
    except ClusterUnavailable as error:
        if os.environ.get("FORESIGHT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"FORESIGHT_REQUIRE_POSTGRES=1 but no private Postgres cluster can be made: {error}")
        pytest.skip(str(error))
    with cluster:
        yield cluster
