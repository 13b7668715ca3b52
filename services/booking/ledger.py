"""The ledger of one batch of commands: everything the batch's decisions read, loaded with
a few statements and locked, changed in memory while the commands are decided in order,
and written back with a few statements.

A decision reads its hub, the booking its carrier reference names, the usage of one slot
and the hub's due no-shows; deciding a fetched batch of hundreds of commands therefore
costs about ten statements, not nine per command. Correctness across instances (two
consumers overlapping on a partition during a rebalance) rests on locks taken before
anything is read: the consumer's inbox claim comes first (a second instance with the same
records waits for it, then finds them duplicates), the slot rows and the named bookings
are read ``FOR UPDATE`` on PostgreSQL, and on SQLite the whole transaction holds the
database's write lock from its first write on. Slot usage is then written as absolute
values: no other transaction can have changed it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import any_, bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.booking import domain, store
from services.booking.domain import BookingStatus, HubConfig, SlotUsage
from services.booking.store import StoredBooking, bookings, slot_usage
from services.runtime.bulk import insert_many
from services.runtime.db import dialect_name

Slot = tuple[str, datetime]  # (hub id, slot start in UTC)

_UPDATE_BOOKING = update(bookings).where(bookings.c.id == bindparam("b_id"))

# A batch's reads, built once with their lists as expanding parameters: building a
# select and its IN list anew cost ~0.4 ms of CPU per statement (measured against the
# same statement reused), which is most of what a lone command waits for. Each with
# ``FOR UPDATE`` for PostgreSQL (SQLite's write lock covers the transaction).
_HUB_STAMPS = select(store.hubs.c.id, store.hubs.c.updated_at)
_BOOKINGS_BY_ID = select(bookings).where(bookings.c.id.in_(bindparam("ids", expanding=True)))
_DUE = (
    select(bookings)
    .where(
        bookings.c.status == BookingStatus.CONFIRMED.value,
        bookings.c.hub_id.in_(bindparam("hub_ids", expanding=True)),
        bookings.c.slot_end < bindparam("latest"),
    )
    .order_by(bookings.c.slot_end, bookings.c.id)
)
_USAGE = select(slot_usage).where(
    tuple_(slot_usage.c.hub_id, slot_usage.c.slot_start).in_(bindparam("slots", expanding=True))
)
# On PostgreSQL the long lists go as one array parameter each instead: an expanding IN
# is rendered anew for every length, each element a parameter with its own cast, and
# asyncpg prepares each length's text anew (measured, 500 ids: 7.9 -> 2.1 µs of CPU per
# id; docs/booking-throughput.md). SQLite has no arrays and keeps IN. The hubs of _DUE
# are a handful: left as they are.
_BOOKINGS_BY_ID_ANY = select(bookings).where(
    bookings.c.id == any_(bindparam("ids", type_=ARRAY(bookings.c.id.type)))
)
_USAGE_ANY = select(slot_usage).where(
    tuple_(slot_usage.c.hub_id, slot_usage.c.slot_start).in_(
        select(
            func.unnest(
                bindparam("hub_ids", type_=ARRAY(slot_usage.c.hub_id.type)),
                bindparam("slot_starts", type_=ARRAY(slot_usage.c.slot_start.type)),
            )
            .table_valued("hub_id", "slot_start")
            .render_derived()
        )
    )
)
_LOCKED = {
    _BOOKINGS_BY_ID: _BOOKINGS_BY_ID_ANY.with_for_update(),
    _DUE: _DUE.with_for_update(),
    _USAGE: _USAGE_ANY.with_for_update(),
}


class HubCatalogue:
    """The hubs, kept between batches: a batch asks only which hubs changed since (the
    admin API and a restart's catalogue load write them), and parses only those."""

    def __init__(self) -> None:
        self._hubs: dict[str, tuple[datetime, HubConfig]] = {}

    async def current(
        self, session: AsyncSession, stamps: dict[str, datetime] | None = None
    ) -> dict[str, HubConfig]:
        """``stamps``: each hub's last change as the batch's probe read them (probe.py);
        read here when not given."""
        if stamps is None:
            stamps = dict((await session.execute(_HUB_STAMPS)).all())
        stale = [h for h, at in stamps.items() if h not in self._hubs or self._hubs[h][0] != at]
        if stale:
            rows = await session.execute(
                select(store.hubs.c.id, store.hubs.c.config, store.hubs.c.updated_at).where(
                    store.hubs.c.id.in_(stale)
                )
            )
            for hub_id, config, at in rows:
                self._hubs[hub_id] = (at, HubConfig.model_validate(config))
        for gone in set(self._hubs) - set(stamps):
            del self._hubs[gone]
        return {hub_id: hub for hub_id, (_, hub) in self._hubs.items()}


@dataclass
class Ledger:
    hubs: dict[str, HubConfig]
    bookings: dict[str, StoredBooking] = field(default_factory=dict)
    usage: dict[Slot, SlotUsage] = field(default_factory=dict)
    # no-show candidates per hub: ids of confirmed bookings, earliest slot end first
    due: dict[str, list[str]] = field(default_factory=dict)
    # new bookings' rows by id, in the order decided: a later transition in the same
    # batch changes its row here, found without a scan of the batch's rows
    inserts: dict[str, dict[str, Any]] = field(default_factory=dict)
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # booking id -> SET
    dirty: set[Slot] = field(default_factory=set)
    # slots given capacity back, in order, for their waiting lists (waiting_list.py)
    freed: list[Slot] = field(default_factory=list)
    _horizons: dict[str, dict[datetime, SlotUsage]] = field(default_factory=dict)

    # --- loading ----------------------------------------------------------------------

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        hubs: dict[str, HubConfig],
        *,
        booking_ids: Iterable[str],
        slots: Iterable[Slot],
        no_shows_before: dict[str, datetime],
    ) -> Ledger:
        """``slots``: those a request may take (booked slots of named bookings are added
        here); ``no_shows_before``: per hub, the latest slot end a no-show may have."""
        ledger = cls(hubs)
        locking = dialect_name(session) == "postgresql"

        def read(query: Any) -> Any:  # PostgreSQL's: locked, lists as arrays
            return _LOCKED[query] if locking else query

        wanted = sorted(set(booking_ids))
        if wanted:
            for row in await session.execute(read(_BOOKINGS_BY_ID), {"ids": wanted}):
                booking = store.row_to_booking(row)
                ledger.bookings[booking.id] = booking
        if no_shows_before:
            latest = max(no_shows_before.values())
            due = {"hub_ids": sorted(no_shows_before), "latest": latest}
            for row in await session.execute(read(_DUE), due):
                booking = ledger.bookings.setdefault(row.id, store.row_to_booking(row))
                if booking.slot_end < no_shows_before.get(booking.hub_id, latest):
                    ledger.due.setdefault(booking.hub_id, []).append(booking.id)
        # a confirmed booking's slot: a cancellation gives its capacity back
        touched = set(slots) | {
            (b.hub_id, b.slot_start)
            for b in ledger.bookings.values()
            if b.status is BookingStatus.CONFIRMED
        }
        if touched:
            ordered = sorted(touched)
            await insert_many(
                session,
                slot_usage,
                [
                    {"hub_id": h, "slot_start": s, "docks_used": 0, "volume_used_l": 0}
                    for h, s in ordered
                ],
                skip_existing=("hub_id", "slot_start"),
            )
            slots_given = (
                {"hub_ids": [h for h, _ in ordered], "slot_starts": [s for _, s in ordered]}
                if locking
                else {"slots": ordered}
            )
            for row in await session.execute(read(_USAGE), slots_given):
                ledger.usage[row.hub_id, row.slot_start] = SlotUsage(
                    row.docks_used, row.volume_used_l
                )
        return ledger

    # --- capacity ---------------------------------------------------------------------

    def usage_of(self, hub_id: str, slot: datetime) -> SlotUsage:
        return self.usage.get((hub_id, slot), SlotUsage())

    def take(self, hub: HubConfig, slot: datetime, volume_l: int) -> bool:
        used = self.usage_of(hub.id, slot)
        if domain.fits(hub, used, volume_l) is not None:
            return False
        self._set(hub.id, slot, SlotUsage(used.docks_used + 1, used.volume_used_l + volume_l))
        return True

    def release(self, hub_id: str, slot: datetime, volume_l: int) -> None:
        used = self.usage_of(hub_id, slot)
        self._set(hub_id, slot, SlotUsage(used.docks_used - 1, used.volume_used_l - volume_l))
        self.freed.append((hub_id, slot))

    def _set(self, hub_id: str, slot: datetime, usage: SlotUsage) -> None:
        self.usage[hub_id, slot] = usage
        self.dirty.add((hub_id, slot))

    async def horizon(
        self, session: AsyncSession, hub: HubConfig, start: datetime, end: datetime
    ) -> dict[datetime, SlotUsage]:
        """Usage of the hub's slots in [start, end): what the database held when first
        asked in this batch, with this batch's own changes over it (for next-slot offers,
        which are advice, read without locks)."""
        if hub.id not in self._horizons:
            self._horizons[hub.id] = await store.usage_between(session, hub.id, start, end)
        seen = dict(self._horizons[hub.id])
        for (hub_id, slot), usage in self.usage.items():
            if hub_id == hub.id and start <= slot < end:
                seen[slot] = usage
        return seen

    # --- bookings ---------------------------------------------------------------------

    def find(self, booking_id: str) -> StoredBooking | None:
        return self.bookings.get(booking_id)

    def add(self, row: dict[str, Any]) -> None:
        """A newly decided booking (confirmed or rejected): inserted when the batch is
        saved, visible to the batch's later commands at once."""
        row.setdefault("updated_at", row["decided_at"])
        booking = StoredBooking(**row)
        self.bookings[booking.id] = booking
        if booking.id in self.inserts:  # pragma: no cover - a decided id is found, not added
            raise ValueError(f"booking {booking.id} added twice in one batch")
        self.inserts[booking.id] = row | {"status": booking.status.value}

    def transition(
        self, booking: StoredBooking, new: BookingStatus, now: datetime, **values: Any
    ) -> StoredBooking:
        changed = replace(booking, status=new, updated_at=now, **values)
        self.bookings[booking.id] = changed
        pending = self.inserts.get(booking.id)
        if pending is not None:  # decided and changed within this batch: one insert
            pending.update(status=new.value, updated_at=now, **values)
        else:
            self.updates.setdefault(booking.id, {}).update(
                status=new.value, updated_at=now, **values
            )
        return changed

    def due_before(self, hub_id: str, now: datetime, grace: timedelta) -> list[StoredBooking]:
        """The hub's confirmed bookings that are no-shows at ``now``, earliest first."""
        result = []
        for booking_id in self.due.get(hub_id, ()):
            booking = self.bookings[booking_id]
            if domain.is_no_show(booking.state, now=now, grace=grace):
                result.append(booking)
        return result

    # --- saving -----------------------------------------------------------------------

    async def save(self, session: AsyncSession) -> None:
        await insert_many(session, store.bookings, list(self.inserts.values()))
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for booking_id, values in self.updates.items():
            by_columns.setdefault(tuple(sorted(values)), []).append({"b_id": booking_id, **values})
        for rows in by_columns.values():  # SET: the columns of the parameters
            await session.execute(_UPDATE_BOOKING, rows)
        if self.dirty:
            # each slot's row was locked when the batch read it: an upsert that always
            # finds its row is an UPDATE of all of them in one execution
            await insert_many(
                session,
                slot_usage,
                [
                    {"hub_id": h, "slot_start": s, "docks_used": u.docks_used,
                     "volume_used_l": u.volume_used_l}
                    for (h, s) in sorted(self.dirty)
                    for u in (self.usage[h, s],)
                ],
                replace_existing=("hub_id", "slot_start"),
            )  # fmt: skip
