"""due no-shows by index: a hub's confirmed bookings by slot end

A decision settles its hub's no-shows first; without this index that read every booking
the hub ever had (2 ms at 2 500, ~30 ms after a year).

Revision ID: 20261130_0002
Revises: 20261121_0001
"""

from alembic import op

revision = "20261130_0002"
down_revision = "20261121_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_bookings_due", "bookings", ["hub_id", "status", "slot_end"])


def downgrade() -> None:
    op.drop_index("ix_bookings_due", table_name="bookings")
