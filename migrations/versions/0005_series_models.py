"""Series -> model table: which forecaster serves each series, instead of scanning the registry's JSON.

Filled from the registry's existing forecasters (the newest model covering a series wins, as before).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:30:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "series_models",
        sa.Column("series_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=400), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_series_models_model_id_models"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["series_id"], ["series.id"], name=op.f("fk_series_models_series_id_series"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("series_id", name=op.f("pk_series_models")),
    )
    with op.batch_alter_table("series_models", schema=None) as batch_op:
        batch_op.create_index("ix_series_models_model", ["model_id"], unique=False)
    _fill_from_registry()


def _fill_from_registry() -> None:
    bind = op.get_bind()
    existing = {row[0] for row in bind.execute(sa.text("SELECT id FROM series"))}
    newest: dict[int, tuple[int, str]] = {}
    models = bind.execute(sa.text("SELECT id, params FROM models WHERE kind = 'forecaster' ORDER BY id"))
    for model_id, params in models:
        document = json.loads(params) if isinstance(params, str) else params or {}
        for series_id, entity, *_ in document.get("series", []):
            if series_id in existing:
                newest[int(series_id)] = (int(model_id), str(entity))
    if newest:
        table = sa.table("series_models", sa.column("series_id"), sa.column("model_id"), sa.column("entity"))
        op.bulk_insert(
            table, [{"series_id": s, "model_id": m, "entity": e} for s, (m, e) in sorted(newest.items())]
        )


def downgrade() -> None:
    with op.batch_alter_table("series_models", schema=None) as batch_op:
        batch_op.drop_index("ix_series_models_model")
    op.drop_table("series_models")
