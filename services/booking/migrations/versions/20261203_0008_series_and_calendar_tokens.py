"""standing bookings (series) and calendar feed tokens (issue 16)

A series row per standing booking (its occurrences are ordinary bookings, their ids
derived from the rule; ``booked_until`` says how far they are decided,
``next_occurrence`` when the moving horizon next has one to book), and the hashed
tokens of calendar feeds. Additive: two new tables. A series' ``purged_at`` marks its
consignment anonymised once it was cancelled more than the retention ago.

Revision ID: 20261203_0008
Revises: 20261203_0007
"""

from alembic import op
import sqlalchemy as sa

from services.runtime.db import UTCDateTime

revision = "20261203_0008"
down_revision = "20261203_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("carrier_id", sa.String(64), nullable=False),
        sa.Column("carrier_reference", sa.String(64), nullable=False),
        sa.Column("hub_id", sa.String(64), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False, comment="the RRULE value"),
        sa.Column(
            "dtstart", sa.String(32), nullable=False, comment="local wall time, ISO, no offset"
        ),
        sa.Column("consignment", sa.JSON(), nullable=False),
        sa.Column("request_fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, comment="active or cancelled"),
        sa.Column("booked_until", UTCDateTime(), nullable=False),
        sa.Column(
            "next_occurrence",
            UTCDateTime(),
            nullable=True,
            comment="the first occurrence after booked_until; null: the rule has ended",
        ),
        sa.Column("outcome", sa.JSON(), nullable=False, comment="payload of SeriesAccepted"),
        sa.Column(
            "cancellation", sa.JSON(), nullable=True, comment="payload of SeriesCancelled"
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column(
            "purged_at",
            UTCDateTime(),
            nullable=True,
            comment="when its delivery addresses were anonymised (docs/privacy.md)",
        ),
        sa.UniqueConstraint(
            "carrier_id", "carrier_reference", name="uq_series_carrier_reference"
        ),
    )
    op.create_index("ix_series_due", "series", ["hub_id", "status", "next_occurrence"])
    op.create_table(
        "calendar_tokens",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False, comment="carrier or operator"),
        sa.Column(
            "scope", sa.String(64), nullable=False, comment="the carrier id or the hub id"
        ),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("calendar_tokens")
    op.drop_index("ix_series_due", table_name="series")
    op.drop_table("series")
