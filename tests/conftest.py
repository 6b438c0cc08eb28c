"""Shared fixtures: every API test runs against SQLite and against the real Postgres at 127.0.0.1:5432,
through a real uvicorn server on 127.0.0.1. Postgres tests skip when it is unreachable, except when
FORESIGHT_REQUIRE_POSTGRES=1 (CI), where they fail instead."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
import uvicorn
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text

from service import migrate
from service.app import create_app
from service.auth import service as auth_service
from service.config import Settings
from service.db import Database

PG_HOST = os.environ.get("FORESIGHT_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("FORESIGHT_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("FORESIGHT_TEST_PG_USER", "postgres")
REQUIRE_POSTGRES = os.environ.get("FORESIGHT_REQUIRE_POSTGRES") == "1"
# CI runs the property tests derandomized (same examples every run, so a red CI is reproducible);
# a developer's run keeps exploring new examples.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if REQUIRE_POSTGRES or os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")
TABLES = (
    "actuations", "loop_targets", "replays", "series_models", "forecasts", "decision_events", "outcomes",
    "decisions", "node_events", "samples", "series", "nodes", "workloads", "power_domains", "clusters",
    "models", "api_keys", "job_runs",
)  # fmt: skip


def pg_url(database: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def _admin_connection() -> psycopg.Connection:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True,
                           connect_timeout=3)  # fmt: skip


def _postgres_available() -> bool:
    try:
        with _admin_connection():
            return True
    except psycopg.OperationalError:
        return False


def require_postgres() -> None:
    if _postgres_available():
        return
    if REQUIRE_POSTGRES:
        pytest.fail(
            f"Postgres at {PG_HOST}:{PG_PORT} is required (FORESIGHT_REQUIRE_POSTGRES=1) but unreachable"
        )
    pytest.skip(f"Postgres at {PG_HOST}:{PG_PORT} unreachable")


@pytest.fixture(scope="session")
def make_pg_database() -> Iterator[Callable[[], str]]:
    """Factory of scratch Postgres databases (dropped at the end of the session)."""
    created: list[str] = []

    def make() -> str:
        require_postgres()
        name = f"foresight_test_{uuid.uuid4().hex[:10]}"
        with _admin_connection() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return pg_url(name)

    yield make
    if created and _postgres_available():
        with _admin_connection() as connection:
            for name in created:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings_for(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url, "load_sample_data": False, "bootstrap_admin_key": False, "log_json": True,
        "jobs_enabled": False,
        "log_level": "WARNING",
    }  # fmt: skip
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def backend_urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'foresight.db'}"}


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def migrated_url(backend: str, backend_urls: dict[str, str], make_pg_database: Callable[[], str]) -> str:
    """A migrated database of the current backend, shared by the session (emptied per test)."""
    if backend not in backend_urls:
        backend_urls[backend] = make_pg_database()
    url = backend_urls[backend]
    database = Database(settings_for(url))
    migrate.upgrade(database.engine)
    database.dispose()
    return url


@pytest.fixture
def database(migrated_url: str) -> Iterator[Database]:
    """The backend's database, emptied before each test (the server shares it)."""
    db = Database(settings_for(migrated_url))
    truncate(db)
    yield db
    db.dispose()


def truncate(db: Database) -> None:
    with db.engine.begin() as connection:
        if db.dialect == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                connection.execute(text(f"DELETE FROM {table}"))


class LiveServer:
    """The real app under uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@pytest.fixture(scope="session")
def live_server(migrated_url: str) -> Iterator[LiveServer]:
    server = LiveServer(settings_for(migrated_url)).start()
    yield server
    server.stop()


@pytest.fixture
def client(live_server: LiveServer, database: Database) -> Iterator[httpx.Client]:
    """An HTTP client to the live server of this backend, over an emptied database."""
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        yield http


@pytest.fixture
def make_key(database: Database) -> Callable[..., str]:
    def make(*scopes: str, name: str = "test") -> str:
        with database.session() as session:
            return auth_service.create_key(session, name, list(scopes)).key

    return make


@pytest.fixture
def admin_headers(make_key: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('admin')}"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last, so the long Playwright session starts after everything else has run (the
    Prometheus end-to-end tests run in a process of their own: see scripts/test.sh)."""
    items.sort(key=lambda item: "tests/dashboard/test_browser.py" in item.nodeid.replace("\\", "/"))
