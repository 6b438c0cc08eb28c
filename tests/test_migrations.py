"""The migrations build exactly the schema the ORM models describe, on both backends: nothing a model
declares is missing from a migrated database, and nothing is there that no model declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.db import Database
from service.models import Base


def _significant(diff: list[object]) -> list[object]:
    """Differences that matter: added/removed tables, columns, indexes and constraints (type spellings
    such as JSON vs JSONB variants and server defaults are compared by the tests of each feature)."""
    kinds = {"add_table", "remove_table", "add_column", "remove_column", "add_index", "remove_index",
             "add_constraint", "remove_constraint", "add_fk", "remove_fk"}  # fmt: skip
    flat: list[object] = []
    for item in diff:
        flat.extend(item if isinstance(item, list) else [item])
    return [item for item in flat if isinstance(item, tuple) and item[0] in kinds]


def test_migrated_schema_matches_the_models(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = compare_metadata(context, Base.metadata)
    assert _significant(diff) == []
