"""bookings keep the answer of their last move (reschedule)

Revision ID: 20261202_0005
Revises: 20261130_0004
Create Date: 2026-12-02 10:00:00

A confirmed booking may be moved to another slot (``reschedule_requested.v1``): its
``slot_start``/``slot_end`` change in place, and ``rescheduled`` keeps the
``BookingRescheduled`` that moved it last (its ``moves`` count, its late flag), the answer
a move to the slot it already has gets again. Additive: a nullable column.
"""

from alembic import op
import sqlalchemy as sa


revision = '20261202_0005'
down_revision = '20261130_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'rescheduled',
                sa.JSON(),
                nullable=True,
                comment='payload of the last BookingRescheduled',
            )
        )


def downgrade() -> None:
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_column('rescheduled')
