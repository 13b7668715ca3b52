"""scorecards: late moves counted per booking, and an index for a carrier's record

A scorecard counts late reschedules (docs/scorecards.md); a booking's stored answer is its
last move's only, so each booking counts its late moves itself (``late_moves``, 0 for the
bookings there are: before this revision no move was counted, and the last move's
``late`` flag is taken over). The no-show rule reads one carrier's recent bookings at a
hub on every far-ahead request, and a scorecard one hub's month: one index on
(hub, carrier, slot start) serves both. Additive.

Revision ID: 20261203_0007
Revises: 20261202_0006
"""

from alembic import op
import sqlalchemy as sa

revision = "20261203_0007"
down_revision = "20261202_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "late_moves",
                sa.Integer(),
                nullable=False,
                server_default="0",
                comment="how many of its moves were late (scorecards: the last move's answer "
                "has one)",
            )
        )
    # the last move's flag is all there is of the moves made before: taken over
    bookings = sa.table(
        "bookings", sa.column("id", sa.String()), sa.column("rescheduled", sa.JSON())
    )
    connection = op.get_bind()
    moved = connection.execute(
        sa.select(bookings.c.id, bookings.c.rescheduled).where(
            bookings.c.rescheduled.is_not(None)
        )
    ).all()
    late = [row.id for row in moved if (row.rescheduled or {}).get("data", {}).get("late")]
    if late:
        connection.execute(
            sa.text("UPDATE bookings SET late_moves = 1 WHERE id = :id"),
            [{"id": booking_id} for booking_id in late],
        )
    op.create_index(
        "ix_bookings_hub_carrier_slot", "bookings", ["hub_id", "carrier_id", "slot_start"]
    )


def downgrade() -> None:
    op.drop_index("ix_bookings_hub_carrier_slot", table_name="bookings")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("late_moves")
