"""The outbox and inbox tables every service keeps in its own database."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from services.runtime.db import BigId, UTCDateTime


def add_outbox(metadata: MetaData) -> Table:
    table = Table(
        "outbox",
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("event_id", String(200), nullable=False, unique=True),
        Column("event_type", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("sent_at", UTCDateTime(), nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
    )
    Index("ix_outbox_unsent", table.c.sent_at, table.c.id)
    return table


def add_inbox(metadata: MetaData) -> Table:
    """What a consumer applied, by the event's CloudEvents identity (``source`` + ``id``),
    where it was read, and (a consumer of commands) the command's ``answer``: the events
    that answered it, ``[{"type", "data", "key"}]``."""
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(100), nullable=False),
        Column("source", String(500), nullable=False),  # '' on rows from before it was kept
        Column("event_id", String(200), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigId, nullable=False),
        Column("processed_at", UTCDateTime(), nullable=False),
        Column("answer", JSON, nullable=True),
        PrimaryKeyConstraint("consumer", "source", "event_id"),
    )
