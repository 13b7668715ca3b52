"""stops follow a booking that moved to another slot

Revision ID: 20261202_0007
Revises: 20261130_0006
Create Date: 2026-12-02 10:00:00

A booking may be moved to another slot (``microhub.booking.rescheduled.v1``): its stops
still expected take the new slot start as ``expected_at``. ``booking_moves`` is the
event's ``moves`` last applied, so that an earlier move's answer published again (a
carrier resent its command) does not move them back. Additive: existing stops were never
moved (0).
"""

from alembic import op
import sqlalchemy as sa


revision = '20261202_0007'
down_revision = '20261130_0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('stops', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'booking_moves',
                sa.Integer(),
                nullable=False,
                server_default='0',
                comment='BookingRescheduled.moves last applied (a resent older move changes nothing)',
            )
        )


def downgrade() -> None:
    with op.batch_alter_table('stops', schema=None) as batch_op:
        batch_op.drop_column('booking_moves')
