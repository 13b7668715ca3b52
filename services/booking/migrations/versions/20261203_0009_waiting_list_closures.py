"""waiting lists of full slots, and hub closures (issue 16)

``waiting_list``: one row per request that waits for a full slot or holds an offer of
freed capacity (services/booking/waiting_list.py); it goes when the request ends.
``hub_closures``: the slot ranges hub operators closed, kept when lifted with who and why
(services/booking/closures.py). Additive: two new tables.

Revision ID: 20261203_0009
Revises: 20261203_0008
"""

from alembic import op
import sqlalchemy as sa

from services.runtime.db import UTCDateTime

revision = "20261203_0009"
down_revision = "20261203_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "waiting_list",
        sa.Column("booking_id", sa.String(length=36), nullable=False),
        sa.Column("hub_id", sa.String(length=64), nullable=False),
        sa.Column("slot_start", UTCDateTime(), nullable=False),
        sa.Column("volume_l", sa.Integer(), nullable=False),
        sa.Column(
            "queued_at", UTCDateTime(), nullable=False, comment="the request's event time"
        ),
        sa.Column(
            "seq", sa.Integer(), nullable=False, comment="order decided in, among the hub's"
        ),
        sa.Column("offered_until", UTCDateTime(), nullable=True, comment="offer held until"),
        sa.Column(
            "request", sa.JSON(), nullable=False, comment="the requested.v2 payload (stop terms)"
        ),
        sa.PrimaryKeyConstraint("booking_id", name=op.f("pk_waiting_list")),
    )
    op.create_index("ix_waiting_list_slot", "waiting_list", ["hub_id", "slot_start"])
    op.create_table(
        "hub_closures",
        sa.Column("hub_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "declared", sa.JSON(), nullable=False, comment="payload of HubClosureDeclared"
        ),
        sa.Column("lifted", sa.JSON(), nullable=True, comment="payload of HubClosureLifted"),
        sa.PrimaryKeyConstraint("hub_id", "id", name=op.f("pk_hub_closures")),
    )


def downgrade() -> None:
    op.drop_table("hub_closures")
    op.drop_index("ix_waiting_list_slot", table_name="waiting_list")
    op.drop_table("waiting_list")
