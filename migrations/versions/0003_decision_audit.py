"""Decision audit trail (every status change with actor and time), decision and power-domain
modes, one outcome per decision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.models.base import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "decision_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_decision_events_decision_id_decisions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_events")),
    )
    with op.batch_alter_table("decision_events", schema=None) as batch_op:
        batch_op.create_index("ix_decision_events_ts", ["ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_decision_events_decision_id"), ["decision_id"], unique=False)
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mode", sa.String(length=16), server_default="approve", nullable=False))
    with op.batch_alter_table("power_domains", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mode", sa.String(length=16), server_default="shadow", nullable=False))
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_outcomes_decision_id", ["decision_id"])


def downgrade() -> None:
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_constraint("uq_outcomes_decision_id", type_="unique")
    with op.batch_alter_table("power_domains", schema=None) as batch_op:
        batch_op.drop_column("mode")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("mode")
    with op.batch_alter_table("decision_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decision_events_decision_id"))
        batch_op.drop_index("ix_decision_events_ts")
    op.drop_table("decision_events")
