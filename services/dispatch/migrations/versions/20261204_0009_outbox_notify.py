"""the outbox NOTIFYs its relay on every commit that enqueues events (PostgreSQL)

A statement-level trigger on ``outbox`` sends ``NOTIFY microhub_outbox_dispatch``,
delivered when the inserting transaction commits (services/runtime/outbox_wakeup.py): the
active relay LISTENs, so rows committed by another process (a standby, the HTTP API
process) are published at once instead of at its next poll. SQLite: nothing (one process
per database; its commits wake the relay in memory).

Revision ID: 20261204_0009
Revises: 20261202_0008
"""

import sqlalchemy as sa
from alembic import op

from services.runtime.outbox_wakeup import create_trigger_sql, drop_trigger_sql

revision = "20261204_0009"
down_revision = "20261202_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in create_trigger_sql("dispatch"):
            op.execute(sa.text(statement))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in drop_trigger_sql():
            op.execute(sa.text(statement))
