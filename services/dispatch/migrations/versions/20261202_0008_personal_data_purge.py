"""personal data retention: stops and routes remember when they were anonymised

The purge (services/dispatch/privacy.py, docs/privacy.md) rounds the coordinates of
stops done and of completed routes' planned stops once MICROHUB_PERSONAL_DATA_RETENTION_DAYS
have passed. ``purged_at`` marks a row done, so that each run reads only the rows it has
not done yet (partial indexes), not the whole history every hour. Additive: nullable
columns and two indexes.

Revision ID: 20261202_0008
Revises: 20261202_0007
"""

from alembic import op
import sqlalchemy as sa

from services.runtime.db import UTCDateTime

revision = "20261202_0008"
down_revision = "20261202_0007"
branch_labels = None
depends_on = None

PURGED = "when its delivery address was anonymised (docs/privacy.md)"


def upgrade() -> None:
    for table in ("stops", "routes"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("purged_at", UTCDateTime(), nullable=True, comment=PURGED)
            )
    op.create_index(
        "ix_stops_unpurged",
        "stops",
        ["updated_at"],
        postgresql_where=sa.text("purged_at IS NULL"),
        sqlite_where=sa.text("purged_at IS NULL"),
    )
    op.create_index(
        "ix_routes_unpurged",
        "routes",
        ["completed_at"],
        postgresql_where=sa.text("purged_at IS NULL"),
        sqlite_where=sa.text("purged_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_routes_unpurged", table_name="routes")
    op.drop_index("ix_stops_unpurged", table_name="stops")
    for table in ("routes", "stops"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("purged_at")
