"""The booking service's tables and queries (its own database; nobody else reads it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.booking.domain import BookingState, BookingStatus, HubConfig, SlotUsage
from services.runtime.db import UTCDateTime, new_metadata, rowcount, upsert
from services.runtime.messaging_tables import add_inbox, add_outbox

metadata = new_metadata()

hubs = Table(
    "hubs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("config", JSON, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("carrier_id", String(64), nullable=False),
    Column("carrier_reference", String(64), nullable=False),
    Column("hub_id", String(64), nullable=False),
    Column("slot_start", UTCDateTime(), nullable=False),
    Column("slot_end", UTCDateTime(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("volume_l", Integer, nullable=False),
    Column("request_fingerprint", String(64), nullable=False),
    Column("request", JSON, nullable=False),
    Column("reason", String(50), nullable=True),
    Column("message", Text, nullable=True),
    Column("outcome", JSON, nullable=False, comment="payload of the decision event"),
    Column("cancellation", JSON, nullable=True, comment="payload of BookingCancelled"),
    Column("check_in", JSON, nullable=True, comment="payload of ConsignmentCheckedIn"),
    Column("rescheduled", JSON, nullable=True, comment="payload of the last BookingRescheduled"),
    Column(
        "late_moves",
        Integer,
        nullable=False,
        default=0,
        server_default="0",
        comment="how many of its moves were late (scorecards: the last move's answer has one)",
    ),
    Column("decided_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column(
        "purged_at",
        UTCDateTime(),
        nullable=True,
        comment="when its delivery addresses were anonymised (docs/privacy.md)",
    ),
    UniqueConstraint("carrier_id", "carrier_reference", name="uq_bookings_carrier_reference"),
)
# a hub's due no-shows (confirmed, slot ended before …) without reading its whole history;
# with the next one it also serves every read by hub alone (no index on hub_id by itself:
# one index entry less per booking written)
Index("ix_bookings_due", bookings.c.hub_id, bookings.c.status, bookings.c.slot_end)
# a carrier's recent bookings at a hub (the no-show rule) and a hub's month (scorecards)
Index(
    "ix_bookings_hub_carrier_slot", bookings.c.hub_id, bookings.c.carrier_id, bookings.c.slot_start
)

# Capacity in use per slot. Decisions read it locked (ledger.py: FOR UPDATE on PostgreSQL,
# the write lock on SQLite) and write it back, so two consumers overlapping during a
# rebalance cannot both take the last dock; the CHECKs make a bug that would free more
# than was taken fail loudly.
slot_usage = Table(
    "slot_usage",
    metadata,
    Column("hub_id", String(64), nullable=False),
    Column("slot_start", UTCDateTime(), nullable=False),
    Column("docks_used", Integer, nullable=False, default=0),
    Column("volume_used_l", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("hub_id", "slot_start"),
    CheckConstraint("docks_used >= 0", name="docks_not_negative"),
    CheckConstraint("volume_used_l >= 0", name="volume_not_negative"),
)

# the purge's next rows (privacy.py): slots ended and not yet anonymised
Index(
    "ix_bookings_unpurged",
    bookings.c.slot_end,
    postgresql_where=bookings.c.purged_at.is_(None),
    sqlite_where=bookings.c.purged_at.is_(None),
)

# The waiting lists of full slots (waiting_list.py): one row per request still waiting or
# holding an offer; it goes when the request ends (the booking row keeps its outcome).
waiting_list = Table(
    "waiting_list",
    metadata,
    Column("booking_id", String(36), primary_key=True),
    Column("hub_id", String(64), nullable=False),
    Column("slot_start", UTCDateTime(), nullable=False),
    Column("volume_l", Integer, nullable=False),
    Column("queued_at", UTCDateTime(), nullable=False, comment="the request's event time"),
    Column("seq", Integer, nullable=False, comment="order decided in, among the hub's"),
    Column("offered_until", UTCDateTime(), nullable=True, comment="offer held until"),
    Column("request", JSON, nullable=False, comment="the requested.v2 payload (stop terms)"),
)
Index("ix_waiting_list_slot", waiting_list.c.hub_id, waiting_list.c.slot_start)

# Hub operators' closures of slot ranges (closures.py); kept when lifted (who and why).
hub_closures = Table(
    "hub_closures",
    metadata,
    Column("hub_id", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("declared", JSON, nullable=False, comment="payload of HubClosureDeclared"),
    # SQL NULL while in force (a JSON null would not match ``IS NULL``)
    Column("lifted", JSON(none_as_null=True), nullable=True, comment="payload of HubClosureLifted"),
    PrimaryKeyConstraint("hub_id", "id"),
)

# A standing booking. Its occurrences are ordinary bookings whose ids are derived from
# the rule (contracts/booking/series.py), so none is listed here: ``booked_until`` says
# up to which instant they have been decided.
series = Table(
    "series",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("carrier_id", String(64), nullable=False),
    Column("carrier_reference", String(64), nullable=False),
    Column("hub_id", String(64), nullable=False),
    Column("rule", Text, nullable=False, comment="the RRULE value"),
    Column("dtstart", String(32), nullable=False, comment="local wall time, ISO, no offset"),
    Column("consignment", JSON, nullable=False),
    Column("request_fingerprint", String(64), nullable=False),
    Column("status", String(20), nullable=False, comment="active or cancelled"),
    Column("booked_until", UTCDateTime(), nullable=False),
    Column(
        "next_occurrence",
        UTCDateTime(),
        nullable=True,
        comment="the first occurrence after booked_until; null: the rule has ended",
    ),
    Column("outcome", JSON, nullable=False, comment="payload of SeriesAccepted"),
    Column("cancellation", JSON, nullable=True, comment="payload of SeriesCancelled"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column(
        "purged_at",
        UTCDateTime(),
        nullable=True,
        comment="when its delivery addresses were anonymised (docs/privacy.md)",
    ),
    UniqueConstraint("carrier_id", "carrier_reference", name="uq_series_carrier_reference"),
)
# the series a hub's moving horizon reaches next
Index("ix_series_due", series.c.hub_id, series.c.status, series.c.next_occurrence)

# Calendar feed tokens (calendar_feed.py): the token is the credential in the feed's URL,
# so only its SHA-256 is kept, like an API key's.
calendar_tokens = Table(
    "calendar_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(20), nullable=False, comment="carrier or operator"),
    Column("scope", String(64), nullable=False, comment="the carrier id or the hub id"),
    Column("label", String(200), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

outbox = add_outbox(metadata)
inbox = add_inbox(metadata)
# the answers the purge has yet to forget (services/runtime/privacy.py)
Index(
    "ix_inbox_answered",
    inbox.c.processed_at,
    postgresql_where=inbox.c.answer.is_not(None),
    sqlite_where=inbox.c.answer.is_not(None),
)

# The statements of the command consumer's hot path are built once and take their values
# as bind parameters (``b_…``, apart from column names): building a statement costs more
# CPU than running it.


# ------------------------------------------------------------------------- hubs --------


async def load_hubs(session: AsyncSession) -> dict[str, HubConfig]:
    rows = (await session.execute(select(hubs.c.config))).scalars()
    configs = (HubConfig.model_validate(config) for config in rows)
    return {hub.id: hub for hub in configs}


_GET_HUB = select(hubs.c.config).where(hubs.c.id == bindparam("b_id"))


async def get_hub(session: AsyncSession, hub_id: str) -> HubConfig | None:
    config = (await session.execute(_GET_HUB, {"b_id": hub_id})).scalar()
    return HubConfig.model_validate(config) if config is not None else None


async def upsert_hub(session: AsyncSession, hub: HubConfig) -> None:
    await session.execute(
        upsert(session, hubs, "id", "config", "updated_at"),
        {"id": hub.id, "config": hub.model_dump(mode="json"), "updated_at": datetime.now(UTC)},
    )


async def delete_hub(session: AsyncSession, hub_id: str) -> bool:
    result = await session.execute(delete(hubs).where(hubs.c.id == hub_id))
    return rowcount(result) == 1


async def active_bookings_at_hub(session: AsyncSession, hub_id: str, *, after: datetime) -> int:
    return (
        await session.execute(
            select(func.count())
            .select_from(bookings)
            .where(
                bookings.c.hub_id == hub_id,
                bookings.c.status.in_(
                    [BookingStatus.CONFIRMED.value, BookingStatus.CHECKED_IN.value]
                ),
                bookings.c.slot_end > after,
            )
        )
    ).scalar_one()


# --------------------------------------------------------------------- capacity --------


async def usage_between(
    session: AsyncSession, hub_id: str, start: datetime, end: datetime
) -> dict[datetime, SlotUsage]:
    rows = await session.execute(
        select(slot_usage.c.slot_start, slot_usage.c.docks_used, slot_usage.c.volume_used_l).where(
            slot_usage.c.hub_id == hub_id,
            slot_usage.c.slot_start >= start,
            slot_usage.c.slot_start < end,
        )
    )
    return {row.slot_start: SlotUsage(row.docks_used, row.volume_used_l) for row in rows}


_SLOT = (
    slot_usage.c.hub_id == bindparam("b_hub_id"),
    slot_usage.c.slot_start == bindparam("b_slot_start"),
)
_USAGE_OF = select(slot_usage.c.docks_used, slot_usage.c.volume_used_l).where(*_SLOT)


async def usage_of(session: AsyncSession, hub_id: str, slot_start: datetime) -> SlotUsage:
    params = {"b_hub_id": hub_id, "b_slot_start": slot_start}
    row = (await session.execute(_USAGE_OF, params)).first()
    return SlotUsage(row.docks_used, row.volume_used_l) if row else SlotUsage()


# --------------------------------------------------------------------- bookings --------


@dataclass(frozen=True)
class StoredBooking:
    id: str
    carrier_id: str
    carrier_reference: str
    hub_id: str
    slot_start: datetime
    slot_end: datetime
    status: BookingStatus
    volume_l: int
    request_fingerprint: str
    request: dict[str, Any]
    reason: str | None
    message: str | None
    outcome: dict[str, Any]
    cancellation: dict[str, Any] | None
    check_in: dict[str, Any] | None
    decided_at: datetime
    updated_at: datetime
    purged_at: datetime | None = None
    rescheduled: dict[str, Any] | None = None  # the last move's answer (slot_start: current)
    late_moves: int = 0  # of its moves, those after the cutoff (scorecards)

    @property
    def moves(self) -> int:
        """How often it has been moved (BookingRescheduled.moves)."""
        return int(self.rescheduled["data"]["moves"]) if self.rescheduled else 0

    @property
    def state(self) -> BookingState:
        return BookingState(self.status, self.hub_id, self.slot_start, self.slot_end)


def row_to_booking(row: Any) -> StoredBooking:
    data = dict(row._mapping)
    data["status"] = BookingStatus(data["status"])
    return StoredBooking(**data)


_FIND_BOOKING = select(bookings).where(
    bookings.c.carrier_id == bindparam("b_carrier_id"),
    bookings.c.carrier_reference == bindparam("b_carrier_reference"),
)
_GET_BOOKING = select(bookings).where(bookings.c.id == bindparam("b_id"))


async def find_booking(
    session: AsyncSession, carrier_id: str, carrier_reference: str
) -> StoredBooking | None:
    params = {"b_carrier_id": carrier_id, "b_carrier_reference": carrier_reference}
    row = (await session.execute(_FIND_BOOKING, params)).first()
    return row_to_booking(row) if row else None


async def get_booking(session: AsyncSession, booking_id: str) -> StoredBooking | None:
    row = (await session.execute(_GET_BOOKING, {"b_id": booking_id})).first()
    return row_to_booking(row) if row else None


async def list_bookings(
    session: AsyncSession,
    *,
    carrier_id: str | None = None,
    hub_ids: Iterable[str] | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = False,
    slot_from: datetime | None = None,
    slot_before: datetime | None = None,
) -> list[StoredBooking]:
    order = (
        (bookings.c.slot_start.desc(), bookings.c.id.desc())
        if newest_first
        else (bookings.c.slot_start, bookings.c.id)
    )
    query = select(bookings).order_by(*order).limit(limit).offset(offset)
    if slot_from is not None:
        query = query.where(bookings.c.slot_start >= slot_from)
    if slot_before is not None:
        query = query.where(bookings.c.slot_start < slot_before)
    if carrier_id is not None:
        query = query.where(bookings.c.carrier_id == carrier_id)
    if hub_ids is not None:
        query = query.where(bookings.c.hub_id.in_(list(hub_ids)))
    if status is not None:
        query = query.where(bookings.c.status == status)
    return [row_to_booking(row) for row in await session.execute(query)]
