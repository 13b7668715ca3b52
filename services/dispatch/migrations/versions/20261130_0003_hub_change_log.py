"""the live queue's change log per hub

Revision ID: 20261130_0003
Revises: 20261121_0002
Create Date: 2026-11-30 04:00:00

The SSE stream of a hub's dispatch queue followed an in-process feed, so only a process
that consumed the hub's partition could serve it: `serve api` answered 404 and, with two
dispatch replicas, a viewer saw only the hubs of the pod it reached. Every change is now
also a row of ``hub_changes`` (numbered per hub, without gaps, from the hub's row in
``hub_change_heads``), which any process serving HTTP follows. Additive only: release N
code ignores both tables.
"""

from alembic import op
import sqlalchemy as sa
import services.runtime.db


revision = "20261130_0003"
down_revision = "20261121_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_change_heads",
        sa.Column("hub_id", sa.String(length=64), nullable=False),
        sa.Column(
            "version", sa.BigInteger(), nullable=False, comment="the hub's latest change number"
        ),
        sa.PrimaryKeyConstraint("hub_id", name=op.f("pk_hub_change_heads")),
    )
    op.create_table(
        "hub_changes",
        sa.Column("hub_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column(
            "at",
            services.runtime.db.UTCDateTime(timezone=True),
            nullable=False,
            comment="wall clock of the write: pruning",
        ),
        sa.Column(
            "changes", sa.JSON(), nullable=False, comment="what changed, as the SSE stream sends it"
        ),
        sa.PrimaryKeyConstraint("hub_id", "version", name=op.f("pk_hub_changes")),
    )
    with op.batch_alter_table("hub_changes", schema=None) as batch_op:
        batch_op.create_index("ix_hub_changes_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hub_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_hub_changes_at")
    op.drop_table("hub_changes")
    op.drop_table("hub_change_heads")
