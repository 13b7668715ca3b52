"""forwarded commands: the carrier's own id and source of each command forwarded

Revision ID: 20261202_g002
Revises: 20261201_g001
Create Date: 2026-11-30 10:10:00
"""

import sqlalchemy as sa
from alembic import op

import services.runtime.db

revision = "20261202_g002"
down_revision = "20261201_g001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forwarded_commands",
        sa.Column("id", sa.String(length=200), nullable=False, comment="the forwarded command's id"),
        sa.Column("carrier_id", sa.String(length=32), nullable=False),
        sa.Column("command_id", sa.String(length=200), nullable=False, comment="the carrier's own id"),
        sa.Column(
            "command_source", sa.String(length=500), nullable=False, comment="the carrier's source"
        ),
        sa.Column(
            "forwarded_at", services.runtime.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forwarded_commands")),
    )
    op.create_index(
        "ix_forwarded_commands_forwarded_at", "forwarded_commands", ["forwarded_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_forwarded_commands_forwarded_at", table_name="forwarded_commands")
    op.drop_table("forwarded_commands")
