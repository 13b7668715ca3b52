"""personal data retention: bookings remember when they were anonymised

The purge (services/booking/privacy.py, docs/privacy.md) rounds the coordinates of a
booking's stops once its slot ended more than MICROHUB_PERSONAL_DATA_RETENTION_DAYS ago.
``purged_at`` marks a booking done, so that each run reads only the bookings it has not
done yet (a partial index on the slot end of those), not the whole history every hour;
the inbox's kept answers, which it forgets after the retention, get a partial index of
their own. Additive: a nullable column and two indexes.

Revision ID: 20261202_0006
Revises: 20261202_0005
"""

from alembic import op
import sqlalchemy as sa

from services.runtime.db import UTCDateTime

revision = "20261202_0006"
down_revision = "20261202_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "purged_at",
                UTCDateTime(),
                nullable=True,
                comment="when its delivery addresses were anonymised (docs/privacy.md)",
            )
        )
    op.create_index(
        "ix_bookings_unpurged",
        "bookings",
        ["slot_end"],
        postgresql_where=sa.text("purged_at IS NULL"),
        sqlite_where=sa.text("purged_at IS NULL"),
    )
    op.create_index(
        "ix_inbox_answered",
        "inbox",
        ["processed_at"],
        postgresql_where=sa.text("answer IS NOT NULL"),
        sqlite_where=sa.text("answer IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_answered", table_name="inbox")
    op.drop_index("ix_bookings_unpurged", table_name="bookings")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("purged_at")
