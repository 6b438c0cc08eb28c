"""A real `foresight serve` on a scratch database, for the benches that measure the service over HTTP.

Creates a throw-away Postgres database (or a SQLite file), migrates it with `foresight db upgrade`, creates
one API key per requested scope, starts the server on a free 127.0.0.1 port and waits for `/readyz`; on exit
it stops the server and drops the database. Server output goes to a log file named in any failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
FORESIGHT = [sys.executable, "-m", "service.cli"]
BASE_ENV = {
    "FORESIGHT_LOAD_SAMPLE_DATA": "false",
    "FORESIGHT_BOOTSTRAP_ADMIN_KEY": "false",
    "FORESIGHT_LOG_LEVEL": "WARNING",
}


@dataclass(frozen=True)
class ScratchServer:
    url: str
    keys: dict[str, str]
    """Raw API key per scope."""
    dsn: str | None
    """libpq conninfo of the scratch Postgres database (None on SQLite)."""
    pid: int
    log: Path

    def bearer(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def scratch_server(
    scopes: Sequence[str],
    *,
    pg: str | None = "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    ready_seconds: float = 120.0,
) -> Iterator[ScratchServer]:
    """The server on a scratch database (Postgres through the admin conninfo `pg`, SQLite when None)."""
    name = f"foresight_bench_{uuid.uuid4().hex[:8]}"
    scratch = Path(tempfile.mkdtemp(prefix="foresight-bench-"))
    dsn = None
    if pg is None:
        database_url = f"sqlite:///{scratch / 'bench.db'}"
    else:
        with psycopg.connect(pg, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        dsn = psycopg.conninfo.make_conninfo(pg, dbname=name)
        params = psycopg.conninfo.conninfo_to_dict(dsn)
        user, host, port = (
            params.get("user", "postgres"),
            params.get("host", "127.0.0.1"),
            params.get("port", 5432),
        )
        database_url = f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    full_env = os.environ | BASE_ENV | dict(env or {}) | {"FORESIGHT_DATABASE_URL": database_url}
    log = scratch / "server.log"
    server = None
    try:
        subprocess.run([*FORESIGHT, "db", "upgrade"], env=full_env, check=True, capture_output=True, cwd=ROOT)
        keys = {}
        for scope in scopes:
            command = [*FORESIGHT, "keys", "create", "--scope", scope, "--name", f"bench-{scope}"]
            created = subprocess.run(
                command, env=full_env, check=True, capture_output=True, text=True, cwd=ROOT
            )
            keys[scope] = created.stdout.strip().splitlines()[-1]
        port = free_port()
        with log.open("wb") as sink:
            server = subprocess.Popen(
                [*FORESIGHT, "serve", "--port", str(port), "--workers", str(workers)],
                env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=sink,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + ready_seconds
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the server did not become ready; see {log}")
            time.sleep(0.1)
        yield ScratchServer(url, keys, dsn, server.pid, log)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if pg is not None:
            with psycopg.connect(pg, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
