"""The gateway's tables (its own database; nobody else reads it): the carrier registry,
the stops of the routes planned (which carrier each is, so a route's later events reach
only the carriers on it), webhook subscriptions and their deliveries, inbox and outbox.

No delivery address is stored here except inside the events queued for webhooks (a
carrier's own confirmations carry its customers' addresses); those are purged with the
retention (docs/privacy.md).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from services.runtime.db import BigId, UTCDateTime, new_metadata
from services.runtime.messaging_tables import add_inbox, add_outbox

metadata = new_metadata()

carriers = Table(
    "carriers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("active", Integer, nullable=False, default=1),
    Column("origin", String(10), nullable=False, comment="file | api: who wrote it last"),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# One row per stop of a planned route: a route's later events (started, completed) name
# the route or only booking and stop ids; this says whose they are. Ids only.
route_stops = Table(
    "route_stops",
    metadata,
    Column("route_id", String(100), nullable=False),
    Column("booking_id", String(100), nullable=False),
    Column("stop_id", String(64), nullable=False),
    Column("carrier_id", String(64), nullable=False),
    Column("hub_id", String(64), nullable=False),
    Column("parcels", Integer, nullable=False),
    Column("planned_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("route_id", "booking_id", "stop_id"),
)
Index("ix_route_stops_planned_at", route_stops.c.planned_at)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("carrier_id", String(32), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("secret", String(100), nullable=False, comment="whsec_…: signs every delivery"),
    Column("previous_secret", String(100), nullable=True, comment="until previous_until"),
    Column("previous_until", UTCDateTime(), nullable=True),
    Column("event_types", JSON, nullable=True, comment="null: every type"),
    Column("active", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# A webhook delivery is written in the transaction that publishes the event to the
# carrier's topic: nothing is lost when the sender stops; the sender retries with backoff.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subscription_id", String(36), nullable=False),
    Column("carrier_id", String(32), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("payload", LargeBinary, nullable=True, comment="null once purged"),
    Column("status", String(12), nullable=False, comment="pending | delivered | failed"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("lease_until", UTCDateTime(), nullable=True, comment="a sender is on it"),
    Column("last_status", Integer, nullable=True, comment="the receiver's HTTP status"),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_event"),
)
Index(
    "ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at
)
Index(
    "ix_webhook_deliveries_subscription",
    webhook_deliveries.c.subscription_id,
    webhook_deliveries.c.id,
)

# Which carrier command each forwarded command was (contracts.carriers.forwarded_id):
# booking's answer names the forwarded one, the carrier is told its own id and source.
forwarded_commands = Table(
    "forwarded_commands",
    metadata,
    Column("id", String(200), primary_key=True, comment="the forwarded command's id"),
    Column("carrier_id", String(32), nullable=False),
    Column("command_id", String(200), nullable=False, comment="the carrier's own id"),
    Column("command_source", String(500), nullable=False, comment="the carrier's source"),
    Column("forwarded_at", UTCDateTime(), nullable=False),
    Column(
        "answer",
        JSON,
        nullable=True,
        comment="what the carrier was told in answer, [{type, data, key}]: told again "
        "when the command is sent again",
    ),
)
Index("ix_forwarded_commands_forwarded_at", forwarded_commands.c.forwarded_at)

outbox = add_outbox(metadata)
inbox = add_inbox(metadata)
