"""consignments follow a booking that moved to another slot

Revision ID: 20261202_r006
Revises: 20261130_r005
Create Date: 2026-12-02 10:00:00

A booking may be moved to another slot (``microhub.booking.rescheduled.v1``): its
consignment takes the new slot and local day. ``moves`` is the event's ``moves`` last
applied, so that an earlier move's answer published again (a carrier resent its command)
does not move it back. Additive: existing consignments were never moved (0).
"""

from alembic import op
import sqlalchemy as sa


revision = '20261202_r006'
down_revision = '20261130_r005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consignments', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('moves', sa.Integer(), nullable=False, server_default='0')
        )


def downgrade() -> None:
    with op.batch_alter_table('consignments', schema=None) as batch_op:
        batch_op.drop_column('moves')
