"""Portable backups: every table, in foreign-key order, as gzip-compressed JSON lines, with the Alembic
revision; restored into an empty database migrated to that same revision, on either backend.

Format (one JSON value per line, gzip): a header `{"format": "foresight-backup", "version": 1, "revision",
"dialect", "created_at", "tables": {name: rows}}`, then per table `{"table": name, "columns": [...]}`,
its rows as JSON arrays in primary-key order, and `{"end": name, "rows": n}`. Values go through the ORM
tables' types, so a SQLite backup restores into Postgres and back: timestamps are ISO-8601 UTC strings,
binary columns base64, JSON columns as JSON; NaN and infinities use Python's JSON extensions.

Both directions stream (rows are read with a server-side cursor and inserted in batches), so a large
`samples` table never sits in memory. A backup reads one consistent snapshot (REPEATABLE READ on Postgres;
one read transaction on SQLite); a restore is one transaction: all or nothing. Sequences are moved past
the restored ids on Postgres.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import Connection, Integer, LargeBinary, Table, func, inspect, select, text

from service import migrate
from service.db import Database
from service.errors import Conflict, InvalidInput
from service.models import Base, UTCDateTime
from service.models.base import utcnow

FORMAT = "foresight-backup"
VERSION = 1
BATCH_ROWS = 5_000
Codec = Callable[[Any], Any]


class Progress(Protocol):
    """What backup and restore report to: a table starts (with its row count), rows advance."""

    def start(self, table: str, rows: int) -> None: ...

    def advance(self, rows: int) -> None: ...


class _Silent:
    def start(self, table: str, rows: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass


@dataclass
class Summary:
    revision: str
    tables: dict[str, int]

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def tables() -> list[Table]:
    """Every table of the schema, parents before children."""
    return list(Base.metadata.sorted_tables)


def _encoders(table: Table) -> list[Codec | None]:
    def encoder(column_type: Any) -> Codec | None:
        if isinstance(column_type, UTCDateTime):
            return lambda value: None if value is None else value.isoformat()
        if isinstance(column_type, LargeBinary):
            return lambda value: None if value is None else base64.b64encode(value).decode("ascii")
        return None

    return [encoder(column.type) for column in table.columns]


def _decoders(table: Table, names: list[str]) -> list[Codec | None]:
    def decoder(column_type: Any) -> Codec | None:
        if isinstance(column_type, UTCDateTime):
            return lambda value: None if value is None else datetime.fromisoformat(value)
        if isinstance(column_type, LargeBinary):
            return lambda value: None if value is None else base64.b64decode(value)
        return None

    return [decoder(table.columns[name].type) for name in names]


def _check_schema(connection: Connection) -> None:
    """Refuse to back up tables this code does not know (nothing may be silently left out)."""
    present = set(inspect(connection).get_table_names()) - {"alembic_version"}
    unknown = sorted(present - {table.name for table in tables()})
    if unknown:
        raise Conflict(
            f"tables {unknown} are not in this version's schema; back up with the matching version"
        )


def backup(database: Database, path: Path, progress: Progress | None = None) -> Summary:
    """Write every row of `database` to `path` (gzip JSON lines); the database must be at head."""
    progress = progress or _Silent()
    revision = migrate.current_revision(database.engine)
    if revision is None or revision != migrate.head_revision():
        raise Conflict(f"database is at revision {revision}, not head; run `foresight db upgrade` first")
    options: dict[str, Any] = (
        {"isolation_level": "REPEATABLE READ"} if database.dialect == "postgresql" else {}
    )
    with database.engine.connect().execution_options(**options) as connection, connection.begin():
        _check_schema(connection)
        counts = {t.name: int(connection.scalar(select(func.count()).select_from(t)) or 0) for t in tables()}
        header = {
            "format": FORMAT, "version": VERSION, "revision": revision, "dialect": database.dialect,
            "created_at": utcnow().isoformat(), "tables": counts,
        }  # fmt: skip
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out:
            _write(out, header)
            for table in tables():
                progress.start(table.name, counts[table.name])
                _write(out, {"table": table.name, "columns": [c.name for c in table.columns]})
                written = _dump_table(connection, table, out, progress)
                _write(out, {"end": table.name, "rows": written})
    return Summary(revision=revision, tables=counts)


def _dump_table(connection: Connection, table: Table, out: IO[str], progress: Progress) -> int:
    encoders = _encoders(table)
    query = select(table).order_by(*table.primary_key.columns)
    written = 0
    result = connection.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(query)
    for partition in result.partitions():
        lines = []
        for row in partition:
            values = [
                value if code is None else code(value) for value, code in zip(row, encoders, strict=True)
            ]
            lines.append(json.dumps(values, separators=(",", ":")))
        out.write("\n".join(lines) + "\n")
        written += len(lines)
        progress.advance(len(lines))
    return written


def _write(out: IO[str], value: dict[str, Any]) -> None:
    out.write(json.dumps(value, separators=(",", ":")) + "\n")


def read_header(path: Path) -> dict[str, Any]:
    """The backup's header line, or 422 when the file is not a Foresight backup."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as source:
            header: dict[str, Any] = json.loads(source.readline())
    except (OSError, ValueError) as error:
        raise InvalidInput(f"{path} is not a Foresight backup (gzip JSON lines): {error}") from error
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise InvalidInput(f"{path} is not a version-{VERSION} Foresight backup")
    return header


def restore(
    database: Database, path: Path, *, force: bool = False, progress: Progress | None = None
) -> Summary:
    """Load a backup into `database`, which must be migrated to the backup's revision and empty (or
    `force`: its rows are deleted first, in the same transaction)."""
    progress = progress or _Silent()
    header = read_header(path)
    current = migrate.current_revision(database.engine)
    if current != header["revision"]:
        raise Conflict(
            f"backup is at revision {header['revision']} but the database is at {current}; restore into an "
            f"empty database migrated to it (`foresight db upgrade {header['revision']}`)"
        )
    with database.engine.begin() as connection:
        _check_schema(connection)
        filled = {
            t.name: n
            for t in tables()
            if (n := int(connection.scalar(select(func.count()).select_from(t)) or 0))
        }
        if filled and not force:
            raise Conflict(
                f"the database is not empty ({filled}); restore into an empty one, or pass --force"
            )
        for table in reversed(tables()):
            connection.execute(table.delete())
        restored = _load(connection, path, header, progress)
        if database.dialect == "postgresql":
            _move_sequences(connection)
    return Summary(revision=header["revision"], tables=restored)


def _load(connection: Connection, path: Path, header: dict[str, Any], progress: Progress) -> dict[str, int]:
    known = {table.name: table for table in tables()}
    restored: dict[str, int] = {}
    with gzip.open(path, "rt", encoding="utf-8") as source:
        source.readline()
        lines = iter(source)
        for line in lines:
            marker = json.loads(line)
            table = known.get(marker.get("table", ""))
            if table is None:
                raise InvalidInput(f"backup names an unknown table {marker.get('table')!r}")
            progress.start(table.name, int(header["tables"].get(table.name, 0)))
            restored[table.name] = _load_table(connection, table, marker["columns"], lines, progress)
    missing = sorted(set(header["tables"]) - set(restored))
    if missing:
        raise InvalidInput(f"backup is truncated: tables {missing} are missing")
    return restored


def _load_table(
    connection: Connection, table: Table, names: list[str], lines: Iterator[str], progress: Progress
) -> int:
    unknown = [name for name in names if name not in table.columns]
    if unknown:
        raise InvalidInput(f"backup has columns {unknown} that table {table.name} does not have")
    decoders = _decoders(table, names)
    batch: list[dict[str, Any]] = []
    count = 0
    for line in lines:
        row = json.loads(line)
        if isinstance(row, dict):
            if row.get("end") != table.name or row.get("rows") != count + len(batch):
                raise InvalidInput(f"backup of table {table.name} is corrupt or truncated")
            break
        values = [value if code is None else code(value) for value, code in zip(row, decoders, strict=True)]
        batch.append(dict(zip(names, values, strict=True)))
        if len(batch) >= BATCH_ROWS:
            count += _insert(connection, table, batch, progress)
    else:
        raise InvalidInput(f"backup is truncated inside table {table.name}")
    return count + _insert(connection, table, batch, progress)


def _insert(connection: Connection, table: Table, batch: list[dict[str, Any]], progress: Progress) -> int:
    if not batch:
        return 0
    connection.execute(table.insert(), batch)
    progress.advance(len(batch))
    size = len(batch)
    batch.clear()
    return size


def _move_sequences(connection: Connection) -> None:
    """Postgres: the next generated id follows the highest restored one."""
    for table in tables():
        for column in table.primary_key.columns:
            if not isinstance(column.type, Integer) or column.foreign_keys:
                continue
            sequence = connection.scalar(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
            )
            if sequence:
                highest = f"SELECT COALESCE(max({column.name}), 0) + 1 FROM {table.name}"
                connection.execute(text(f"SELECT setval(:s, ({highest}), false)"), {"s": sequence})
