"""indexes for dispatch's per-event queries

Revision ID: 20261121_0002
Revises: 20261121_0001
Create Date: 2026-11-21 09:50:00

After every event dispatch counts the hub's waiting stops, and reads a route's stops and
a vehicle's active route; with only ``hub_id`` indexed each was a scan of the hub's whole
history, growing through a month.
"""

from alembic import op

revision = "20261121_0002"
down_revision = "20261121_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stops", schema=None) as batch_op:
        batch_op.create_index("ix_stops_hub_status", ["hub_id", "status"], unique=False)
        batch_op.create_index("ix_stops_route_id", ["route_id"], unique=False)
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.create_index("ix_routes_vehicle_status", ["vehicle_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.drop_index("ix_routes_vehicle_status")
    with op.batch_alter_table("stops", schema=None) as batch_op:
        batch_op.drop_index("ix_stops_route_id")
        batch_op.drop_index("ix_stops_hub_status")
