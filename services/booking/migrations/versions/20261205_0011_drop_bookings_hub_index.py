"""drop ix_bookings_hub_id: its one column leads two other indexes of bookings

``ix_bookings_due`` (hub_id, status, slot_end) and ``ix_bookings_hub_carrier_slot``
(hub_id, carrier_id, slot_start) serve every read by hub as well, so this index only cost
each booking written one more index entry (docs/booking-throughput.md, "One index less").

Revision ID: 20261205_0011
Revises: 20261204_0010
"""

from alembic import op

revision = "20261205_0011"
down_revision = "20261204_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_bookings_hub_id", table_name="bookings")


def downgrade() -> None:
    op.create_index("ix_bookings_hub_id", "bookings", ["hub_id"])
