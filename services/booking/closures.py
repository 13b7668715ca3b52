"""Hub closures as booking decides them (issue 16; contracts/booking/closures.py).

An operator's closure is a command on the hub's partition like any booking command, so
it is decided in order with them: every request decided after it sees the hub closed
(``hub_closed``, with next slots outside it), every request before it was decided
without it. The closures of a batch's hubs are laid over the catalogue's hubs
(:class:`ClosedHub`): the slot grid, the rules of a request and of a move, next-slot
offers and the waiting list's offers all skip the closed slots through
``slot_grid.closure_of``. Confirmed bookings in a closed range stay confirmed; their carriers
are told, each with the next slots that would take the booking, and move it with a
reschedule. Lifting a closure offers its slots to their waiting lists.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, bindparam, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.booking import (
    BookingAffectedByClosure,
    ClosureRejectionReason,
    HubClosureDeclared,
    HubClosureLifted,
    HubClosureLiftRequested,
    HubClosureRejected,
    HubClosureRequested,
    SlotOffer,
)
from services.booking import domain, store
from services.booking.decisions import as_document, stored_payload
from services.booking.domain import BookingStatus, HubConfig
from services.booking.ledger import Ledger
from services.booking.store import bookings, hub_closures
from services.runtime.db import dialect_name
from services.runtime.uow import UnitOfWork

ClosureCommand = HubClosureRequested | HubClosureLiftRequested


class ClosedRange(BaseModel):
    model_config = ConfigDict(frozen=True)

    closure_id: str
    starts_at: datetime
    ends_at: datetime
    reason: str


class ClosedHub(HubConfig):
    """A catalogue hub with the operator's closures in force (for one batch)."""

    closures: tuple[ClosedRange, ...] = ()


def with_closures(hub: HubConfig, closures: list[ClosedRange]) -> HubConfig:
    if not closures:
        return HubConfig.model_construct(**{f: getattr(hub, f) for f in HubConfig.model_fields})
    fields = {f: getattr(hub, f) for f in HubConfig.model_fields}
    ordered = tuple(sorted(closures, key=lambda c: (c.starts_at, c.closure_id)))
    return ClosedHub.model_construct(**fields, closures=ordered)


async def in_force_between(
    session: AsyncSession, hub_id: str, start: datetime, end: datetime
) -> list[ClosedRange]:
    """The hub's closures in force (not lifted) that overlap ``[start, end)``: what a
    day's slot listing marks closed. A read: no locks (decisions take theirs in load)."""
    c = hub_closures.c
    rows = await session.execute(
        select(hub_closures)
        .where(c.hub_id == hub_id, c.lifted.is_(None), c.starts_at < end, c.ends_at > start)
        .order_by(c.starts_at, c.id)
    )
    return [
        ClosedRange(closure_id=r.id, starts_at=r.starts_at, ends_at=r.ends_at, reason=r.reason)
        for r in rows
    ]


# a batch's closures, built once with the lists as expanding parameters (ledger.py says
# why): those in force lately, and with them those the batch's commands name
_c = hub_closures.c
_RECENT = and_(_c.lifted.is_(None), _c.ends_at > bindparam("after"))
_OF_HUBS = _c.hub_id.in_(bindparam("hub_ids", expanding=True))
# what a batch reads of its hubs' closures when its commands name none (probe.py asks
# whether any row meets it before the locked read)
IN_FORCE_LATELY = and_(_OF_HUBS, _RECENT)
_IN_FORCE = select(hub_closures).where(_OF_HUBS, _RECENT).order_by(_c.hub_id, _c.id)
_NAMED = (
    select(hub_closures)
    .where(_OF_HUBS, or_(_RECENT, tuple_(_c.hub_id, _c.id).in_(bindparam("named", expanding=True))))
    .order_by(_c.hub_id, _c.id)
)
_IN_FORCE_LOCKED, _NAMED_LOCKED = _IN_FORCE.with_for_update(), _NAMED.with_for_update()


def read_after(since: datetime) -> datetime:
    """The least end a closure read for a batch whose earliest event time is ``since``
    may have (Closures.load says why)."""
    return since - timedelta(days=2)


class Closures:
    """The closures of a batch's hubs: those in force, and those its commands name."""

    def __init__(self, rows: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.rows = rows
        self._new: set[tuple[str, str]] = set()
        self._lifted: set[tuple[str, str]] = set()

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        hub_ids: Any,
        *,
        since: datetime,
        named: list[tuple[str, str]] | None = None,
        none_in_force: bool = False,
    ) -> Closures:
        """``since``: the batch's earliest event time. A closure that ended two days before
        it can close no slot the batch decides (a slot a day or more past is refused before
        any decision: answers.py), so it is not read. ``none_in_force``: the batch's
        probe found no row that the read of those in force would return (probe.py)."""
        hubs = sorted(set(hub_ids))
        if not hubs or (none_in_force and not named):
            return cls({})
        locked = dialect_name(session) == "postgresql"
        values: dict[str, Any] = {"hub_ids": hubs, "after": read_after(since)}
        if named:
            query = _NAMED_LOCKED if locked else _NAMED
            values["named"] = sorted(set(named))
        else:
            query = _IN_FORCE_LOCKED if locked else _IN_FORCE
        rows = await session.execute(query, values)
        return cls({(r.hub_id, r.id): dict(r._mapping) for r in rows})

    def in_force(self, hub_id: str) -> list[ClosedRange]:
        return [
            ClosedRange(
                closure_id=r["id"], starts_at=r["starts_at"], ends_at=r["ends_at"],
                reason=r["reason"],
            )
            for (h, _), r in self.rows.items()
            if h == hub_id and r["lifted"] is None
        ]  # fmt: skip

    def overlay(self, hubs: dict[str, HubConfig]) -> dict[str, HubConfig]:
        """The hubs as the batch decides with them: closed where a closure is in force."""
        closed = {h for (h, _), r in self.rows.items() if r["lifted"] is None}
        return {
            i: with_closures(hub, self.in_force(i)) if i in closed else hub
            for i, hub in hubs.items()
        }

    # --- deciding ---------------------------------------------------------------------

    async def decide(
        self, uow: UnitOfWork, ledger: Ledger, command: ClosureCommand, now: datetime
    ) -> None:
        hub = ledger.hubs.get(command.hub_id)
        known = self.rows.get((command.hub_id, command.closure_id))
        problem: tuple[ClosureRejectionReason, str] | None = None
        if hub is None:
            problem = ClosureRejectionReason.UNKNOWN_HUB, f"there is no hub {command.hub_id!r}"
        elif isinstance(command, HubClosureRequested):
            if known is not None:
                if (known["starts_at"], known["ends_at"], known["reason"]) == (
                    command.starts_at, command.ends_at, command.reason,
                ):  # fmt: skip
                    uow.emit(stored_payload(known["declared"]), key=hub.id, time=now)
                    return
                problem = (
                    ClosureRejectionReason.CLOSURE_CONFLICT,
                    f"closure {command.closure_id} of hub {hub.id} is another closure",
                )
            elif command.ends_at <= command.starts_at:
                problem = ClosureRejectionReason.EMPTY_RANGE, "ends_at must be after starts_at"
        elif known is None:
            problem = (
                ClosureRejectionReason.UNKNOWN_CLOSURE,
                f"hub {command.hub_id} has no closure {command.closure_id}",
            )
        elif known["lifted"] is not None:  # lifted already: that answer again
            uow.emit(stored_payload(known["lifted"]), key=command.hub_id, time=now)
            return
        if problem is not None:
            uow.emit(
                HubClosureRejected(
                    command_type=command.event_type,
                    hub_id=command.hub_id,
                    closure_id=command.closure_id,
                    reason=problem[0],
                    message=problem[1],
                ),
                key=command.hub_id,
                time=now,
            )
            return
        assert hub is not None
        if isinstance(command, HubClosureRequested):
            await self._close(uow, ledger, hub, command, now)
        else:
            assert known is not None
            self._lift(uow, ledger, known, command, now)

    async def _close(
        self,
        uow: UnitOfWork,
        ledger: Ledger,
        hub: HubConfig,
        command: HubClosureRequested,
        now: datetime,
    ) -> None:
        key = (hub.id, command.closure_id)
        row = {
            "hub_id": hub.id, "id": command.closure_id, "starts_at": command.starts_at,
            "ends_at": command.ends_at, "reason": command.reason, "lifted": None,
        }  # fmt: skip
        self.rows[key] = row
        self._new.add(key)
        closed = ledger.hubs[hub.id] = with_closures(hub, self.in_force(hub.id))
        affected = await self._affected(uow.session, ledger, hub.id, command)
        declared = HubClosureDeclared(
            hub_id=hub.id,
            closure_id=command.closure_id,
            starts_at=command.starts_at,
            ends_at=command.ends_at,
            reason=command.reason,
            closed_by=command.requested_by,
            affected_bookings=len(affected),
        )
        row["declared"] = as_document(declared)
        uow.emit(declared, key=hub.id, time=now)
        for booking in affected:
            offers = await self._next_slots(
                uow.session, ledger, closed, booking.slot_start, booking.volume_l, now
            )
            uow.emit(
                BookingAffectedByClosure(
                    booking_id=booking.id,
                    carrier_id=booking.carrier_id,
                    carrier_reference=booking.carrier_reference,
                    hub_id=hub.id,
                    slot_start=booking.slot_start,
                    slot_end=booking.slot_end,
                    closure_id=command.closure_id,
                    closed_from=command.starts_at,
                    closed_until=command.ends_at,
                    reason=command.reason,
                    next_slots=offers,
                ),
                key=hub.id,
                time=now,
            )

    @staticmethod
    async def _affected(
        session: AsyncSession, ledger: Ledger, hub_id: str, command: HubClosureRequested
    ) -> list[Any]:
        """The hub's confirmed bookings in slots overlapping the closure, slot order: the
        database's, with this batch's decisions over them."""
        query = select(bookings).where(
            bookings.c.hub_id == hub_id,
            bookings.c.status == BookingStatus.CONFIRMED.value,
            bookings.c.slot_start < command.ends_at,
            bookings.c.slot_end > command.starts_at,
        )
        if dialect_name(session) == "postgresql":
            query = query.with_for_update()
        for row in await session.execute(query):
            ledger.bookings.setdefault(row.id, store.row_to_booking(row))
        return sorted(
            (
                b for b in ledger.bookings.values()
                if b.hub_id == hub_id and b.status is BookingStatus.CONFIRMED
                and b.slot_start < command.ends_at and b.slot_end > command.starts_at
            ),
            key=lambda b: (b.slot_start, b.id),
        )  # fmt: skip

    @staticmethod
    async def _next_slots(
        session: AsyncSession,
        ledger: Ledger,
        hub: HubConfig,
        after: datetime,
        volume_l: int,
        now: datetime,
    ) -> list[SlotOffer]:
        """The next slots after the booking's (as for a request it would make again):
        past the closure, which they skip."""
        end = now + timedelta(days=hub.booking_horizon_days, seconds=1)
        usage = await ledger.horizon(session, hub, now, end)
        return [
            SlotOffer(
                start=o.start, end=o.end, free_docks=o.free_docks,
                free_volume_m3=o.free_volume_l / 1000,
            )
            for o in domain.next_fitting_slots(hub, after=after, now=now, volume_l=volume_l, usage=usage)
        ]  # fmt: skip

    def _lift(
        self,
        uow: UnitOfWork,
        ledger: Ledger,
        row: dict[str, Any],
        command: HubClosureLiftRequested,
        now: datetime,
    ) -> None:
        lifted = HubClosureLifted(
            hub_id=command.hub_id,
            closure_id=command.closure_id,
            starts_at=row["starts_at"],
            ends_at=row["ends_at"],
            reason=command.reason,
            lifted_by=command.requested_by,
        )
        row["lifted"] = as_document(lifted)
        self._lifted.add((command.hub_id, command.closure_id))
        hub = ledger.hubs[command.hub_id]
        ledger.hubs[hub.id] = with_closures(hub, self.in_force(hub.id))
        uow.emit(lifted, key=hub.id, time=now)
        # what waits for the reopened slots is offered them (waiting_list.offer_freed)
        for slot_hub, slot in sorted(ledger.usage):
            if slot_hub == hub.id and row["starts_at"] - hub.slot_length < slot < row["ends_at"]:
                ledger.freed.append((slot_hub, slot))

    # --- saving -----------------------------------------------------------------------

    async def save(self, session: AsyncSession) -> None:
        new = [self.rows[k] for k in sorted(self._new)]
        if new:
            await session.execute(hub_closures.insert(), new)
        for hub_id, closure_id in sorted(self._lifted - self._new):
            await session.execute(
                update(hub_closures)
                .where(hub_closures.c.hub_id == hub_id, hub_closures.c.id == closure_id)
                .values(lifted=self.rows[hub_id, closure_id]["lifted"])
            )
