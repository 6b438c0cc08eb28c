"""Start-up steps: migrate an embedded SQLite, load the bundled sample trace into an empty database, and
print a first admin key. A database that is down at start is logged, not fatal: the API answers 503."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import exc, func, select

from service import migrate
from service.auth import service as auth_service
from service.config import Settings
from service.db import Database
from service.models import Series
from service.ops.logging import get_logger
from service.telemetry import service as telemetry
from service.telemetry.csv_import import CsvMapping, batches, read_long_csv

log = get_logger("foresight.startup")
SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data" / "nab"
SAMPLE_CLUSTER = "aws-demo"
# file -> (entity kind, entity id, metric, unit); see sample_data/nab/README.md
SAMPLE_FILES = {
    "ec2_cpu_utilization_24ae8d.csv": ("node", "ec2-24ae8d", "cpu_utilization", "%"),
    "ec2_cpu_utilization_5f5533.csv": ("node", "ec2-5f5533", "cpu_utilization", "%"),
    "rds_cpu_utilization_cc0c53.csv": ("node", "rds-cc0c53", "cpu_utilization", "%"),
    "ec2_network_in_257a54.csv": ("node", "ec2-257a54", "network_in_bytes", "B"),
    "elb_request_count_8c0756.csv": ("workload", "elb-8c0756", "request_count", "req"),
}


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
    """Load the NAB sample trace when no series exist yet; returns samples stored."""
    with database.session() as session:
        if session.scalar(select(func.count()).select_from(Series)):
            return 0
        stored = 0
        for name, (kind, entity, metric, unit) in SAMPLE_FILES.items():
            mapping = CsvMapping(kind=kind, cluster=SAMPLE_CLUSTER, metric=metric, unit=unit, series=entity)
            for batch in batches(read_long_csv(SAMPLE_DIR / name, mapping), mapping):
                stored += telemetry.ingest_document(session, batch, database.settings).accepted
    log.info("sample_data_loaded", samples=stored, cluster=SAMPLE_CLUSTER)
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
