"""Engine and sessions: one engine per app, a request session that commits or rolls back, and the
translation of connectivity failures into `DatabaseUnavailable` (503) so a client knows to retry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.errors import DatabaseUnavailable


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 for them."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_db_engine(settings: Settings) -> Engine:
    """An engine tuned per backend: SQLite in WAL mode with a busy timeout, Postgres with pre-ping."""
    url = make_url(normalise_url(settings.database_url))
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_connect_timeout_seconds,
        connect_args={"connect_timeout": settings.db_connect_timeout_seconds},
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def is_unavailable_error(error: BaseException) -> bool:
    """True for failures that mean "the database is not there or busy right now", not a bug."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.OperationalError | exc.InterfaceError | exc.TimeoutError):
        return True
    # the COPY fast path talks to psycopg directly, so a server going away mid-batch arrives unwrapped
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    return isinstance(error, ConnectionError | OSError)


class Database:
    """Owns the engine and the session factory of one app (or one CLI command)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_db_engine(settings)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on any error; outages become 503s. Callbacks
        registered with `on_commit` run once the commit succeeded (and never after a rollback)."""
        session = self.session_factory()
        session.info[DATABASE] = self
        committed: list[Callable[[], None]] = []
        try:
            yield session
            session.commit()
            committed = session.info.pop(AFTER_COMMIT, [])
        except BaseException as error:
            _rollback_quietly(session)
            if isinstance(error, exc.SQLAlchemyError | psycopg.Error) and is_unavailable_error(error):
                raise DatabaseUnavailable(
                    "the database is unavailable or busy; nothing was written, retry later",
                    retry_after=self.settings.retry_after_seconds,
                ) from error
            raise
        finally:
            session.close()
        for callback in committed:
            callback()

    def dispose(self) -> None:
        self.engine.dispose()


AFTER_COMMIT = "foresight_after_commit"
DATABASE = "foresight_database"


def database_of(session: Session) -> Database:
    """The Database a unit of work belongs to (work after its commit opens sessions of its own there)."""
    database = session.info.get(DATABASE)
    if not isinstance(database, Database):
        raise RuntimeError("the session was not opened by Database.session()")
    return database


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the unit of work `session` belongs to has committed (for example counting
    what was stored: metrics then never include rolled-back work, and are up to date before the
    response is sent)."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


def _rollback_quietly(session: Session) -> None:
    with suppress(exc.SQLAlchemyError):
        session.rollback()
