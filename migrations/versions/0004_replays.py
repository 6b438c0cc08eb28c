"""Replay runs started over the API, with their progress and (written at once) results.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.models.base import JSONDocument, UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trace", sa.String(length=200), nullable=False),
        sa.Column("trace_format", sa.String(length=32), nullable=False),
        sa.Column("policies", JSONDocument, nullable=False),
        sa.Column("seeds", sa.Integer(), nullable=False),
        sa.Column("config", JSONDocument, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary", JSONDocument, nullable=True),
        sa.Column("report_gz", sa.LargeBinary(), nullable=True),
        sa.Column("timeline_gz", sa.LargeBinary(), nullable=True),
        sa.Column("trace_csv_gz", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replays")),
    )
    with op.batch_alter_table("replays", schema=None) as batch_op:
        batch_op.create_index("ix_replays_created", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("replays", schema=None) as batch_op:
        batch_op.drop_index("ix_replays_created")
    op.drop_table("replays")
