"""the inbox keeps the answer to each command

Revision ID: 20261130_r005
Revises: 20261130_r004
Create Date: 2026-11-30 13:00:00

A carrier that sent the very same command again (same source and id: a retry after a
timeout) got no answer: the inbox took it for a duplicate and stopped there. ``answer``
keeps the events that answered a command (``[{"type", "data", "key"}]``, booking's
consumer), so that it is answered again; other consumers leave it empty. Additive: a
nullable column.
"""

from alembic import op
import sqlalchemy as sa


revision = '20261130_r005'
down_revision = '20261130_r004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answer', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_column('answer')
