"""forwarded commands keep the answer the carrier was told, to tell it again on a resend

Revision ID: 20261203_g003
Revises: 20261202_g002
Create Date: 2026-11-30 11:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "20261203_g003"
down_revision = "20261202_g002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("forwarded_commands") as batch:
        batch.add_column(
            sa.Column(
                "answer",
                sa.JSON(),
                nullable=True,
                comment="what the carrier was told in answer, [{type, data, key}]: told again "
                "when the command is sent again",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("forwarded_commands") as batch:
        batch.drop_column("answer")
