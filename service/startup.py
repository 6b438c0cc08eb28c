"""Start-up steps: migrate an embedded SQLite, set up the live demo in an empty database, and print a
first admin key. A database that is down at start is logged, not fatal: the API answers 503."""

from __future__ import annotations

from sqlalchemy import exc

from service import migrate
from service.auth import service as auth_service
from service.config import Settings
from service.db import Database
from service.demo import setup as demo
from service.ops.logging import get_logger

log = get_logger("foresight.startup")
SAMPLE_CLUSTER = demo.catalog.CLUSTER


def prepare_database(database: Database, settings: Settings) -> None:
    try:
        if settings.is_sqlite and settings.auto_migrate:
            migrate.upgrade(database.engine)
        if not migrate.is_at_head(database.engine):
            log.warning("schema_not_at_head", hint="run `foresight db upgrade`")
            return
        if settings.load_sample_data:
            load_sample_data(database)
        if settings.bootstrap_admin_key:
            bootstrap_admin_key(database)
    except exc.SQLAlchemyError as error:
        log.warning("database_unavailable_at_start", error=type(error).__name__)


def load_sample_data(database: Database) -> int:
    """Set up the live demo when no series exist yet (service/demo/); returns samples stored."""
    with database.session() as session:
        stored = demo.set_up(session, database.settings)
    if stored:
        log.info("demo_loaded", samples=stored, cluster=SAMPLE_CLUSTER)
    return stored


def bootstrap_admin_key(database: Database) -> str | None:
    """Create and print an admin key when none is active (first start of an embedded install)."""
    with database.session() as session:
        if auth_service.has_active_keys(session):
            return None
        created = auth_service.create_key(session, "bootstrap-admin", ["admin"])
    print(
        "\nFirst admin API key (shown once; create more with `foresight keys create`):\n"
        + created.key
        + "\n",
        flush=True,
    )
    return created.key
