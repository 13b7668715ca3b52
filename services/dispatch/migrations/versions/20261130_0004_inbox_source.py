"""the inbox keys events by CloudEvents identity (source + id)

Revision ID: 20261130_0004
Revises: 20261130_0003
Create Date: 2026-11-30 12:00:00

The inbox knew an event by its id alone, so a second producer that used the same id (a
counter: common) had its event taken for a duplicate and dropped unseen. CloudEvents
identity is ``source`` + ``id``: the primary key is now (consumer, source, event_id).
Rows recorded before keep ``source = ''`` (unknown): a redelivery of such an event after
the upgrade is applied once more, and each service's own idempotency makes that harmless
(booking answers a resent command with its stored outcome; dispatch and reporting key
their state by booking). Release N's inbox claim cannot use the new key: this upgrade
stops the consumers first instead of rolling (docs/deploy.md, Upgrade and rollback).
"""

from alembic import op
import sqlalchemy as sa


revision = '20261130_0004'
down_revision = '20261130_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('source', sa.String(length=500), nullable=False, server_default='')
        )
        batch_op.drop_constraint('pk_inbox', type_='primary')
        batch_op.create_primary_key('pk_inbox', ['consumer', 'source', 'event_id'])
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.alter_column('source', server_default=None)


def downgrade() -> None:
    # the same id from two sources would no longer fit: keep one row of each id
    op.execute(
        "DELETE FROM inbox WHERE source <> '' AND EXISTS (SELECT 1 FROM inbox AS other "
        "WHERE other.consumer = inbox.consumer AND other.event_id = inbox.event_id "
        "AND other.source < inbox.source)"
    )
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_constraint('pk_inbox', type_='primary')
        batch_op.create_primary_key('pk_inbox', ['consumer', 'event_id'])
        batch_op.drop_column('source')
