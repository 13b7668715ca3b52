"""stops: kind and time window (booking's stop terms), ETA, proof of delivery, pin

Revision ID: 20261130_0006
Revises: 20261130_0005
Create Date: 2026-11-30 06:00:00

Stops booked with ``microhub.booking.requested.v2`` may be pickups and have a time
window; the planner's ETA and the vehicle's proof of delivery are kept for the carrier's
``StopUpdated`` events and the live queue; a dispatcher may pin a stop to a vehicle.
Additive only, with defaults: release N code ignores the columns.
"""

from alembic import op
import sqlalchemy as sa
import services.runtime.db


revision = "20261130_0006"
down_revision = "20261130_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stops", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=20), nullable=False, server_default="delivery")
        )
        batch_op.add_column(
            sa.Column("window_start", services.runtime.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("window_end", services.runtime.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "eta",
                services.runtime.db.UTCDateTime(timezone=True),
                nullable=True,
                comment="when service should start",
            )
        )
        batch_op.add_column(
            sa.Column(
                "proof",
                sa.JSON(),
                nullable=True,
                comment="the proof of delivery, as the vehicle sent it",
            )
        )
        batch_op.add_column(
            sa.Column(
                "pinned_vehicle", sa.String(length=64), nullable=True, comment="the dispatcher's pin"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("stops", schema=None) as batch_op:
        batch_op.drop_column("pinned_vehicle")
        batch_op.drop_column("proof")
        batch_op.drop_column("eta")
        batch_op.drop_column("window_end")
        batch_op.drop_column("window_start")
        batch_op.drop_column("kind")
