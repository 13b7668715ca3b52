"""a stop counts once: route_consignments.claimed_stops (stops first routed on this route)

Revision ID: 20261130_r002
Revises: 20261121_r001
Create Date: 2026-11-30 04:20:00

Before, the report summed route_consignments.stops and .parcels over every route that
carried a stop, so a stop that failed and was planned again counted twice. The stops a
route claimed first are in stop_claims: the backfill counts them, so an existing
projection needs no rebuild for this fix.
"""

from alembic import op
import sqlalchemy as sa


revision = '20261130_r002'
down_revision = '20261121_r001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('route_consignments', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('claimed_stops', sa.Integer(), nullable=False, server_default='0')
        )
    op.execute(
        "UPDATE route_consignments SET claimed_stops = ("
        " SELECT count(*) FROM stop_claims"
        " WHERE stop_claims.route_id = route_consignments.route_id"
        " AND stop_claims.booking_id = route_consignments.booking_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table('route_consignments', schema=None) as batch_op:
        batch_op.drop_column('claimed_stops')
