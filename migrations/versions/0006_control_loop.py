"""Control loop: loop targets (cadence, lease, kill switch), actuation attempts, a workload's scale
target, HPA-style behavior and performance series, and an index for the loop's per-target decision lookups.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.models.base import JSONDocument, UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "loop_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_kind", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=True),
        sa.Column("cadence_seconds", sa.Float(), nullable=True),
        sa.Column("actuator", sa.String(length=32), nullable=True),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("frozen_reason", sa.String(length=500), nullable=True),
        sa.Column("frozen_by", sa.String(length=200), nullable=True),
        sa.Column("frozen_at", UTCDateTime(), nullable=True),
        sa.Column("next_due_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("last_run_at", UTCDateTime(), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_detail", JSONDocument, nullable=False),
        sa.Column("last_data_at", UTCDateTime(), nullable=True),
        sa.Column("live_decision_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["clusters.id"],
            name=op.f("fk_loop_targets_cluster_id_clusters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loop_targets")),
        sa.UniqueConstraint("target_kind", "target_id", name=op.f("uq_loop_targets_target_kind_target_id")),
    )
    with op.batch_alter_table("loop_targets", schema=None) as batch_op:
        batch_op.create_index("ix_loop_targets_due", ["next_due_at"], unique=False)

    op.create_table(
        "actuations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("actuator", sa.String(length=32), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=1000), nullable=False),
        sa.Column("observed", JSONDocument, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_actuations_decision_id_decisions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actuations")),
    )
    with op.batch_alter_table("actuations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_actuations_decision_id"), ["decision_id"], unique=False)

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_decisions_target", ["cluster_id", "target_name", "kind", "created_at"], unique=False
        )
    with op.batch_alter_table("workloads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scale_target", sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column("behavior", JSONDocument, nullable=True))
        batch_op.add_column(sa.Column("performance_metric", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_decisions_target")
    with op.batch_alter_table("workloads", schema=None) as batch_op:
        batch_op.drop_column("performance_metric")
        batch_op.drop_column("behavior")
        batch_op.drop_column("scale_target")
    with op.batch_alter_table("actuations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_actuations_decision_id"))
    op.drop_table("actuations")
    with op.batch_alter_table("loop_targets", schema=None) as batch_op:
        batch_op.drop_index("ix_loop_targets_due")
    op.drop_table("loop_targets")
