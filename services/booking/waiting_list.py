"""The waiting lists of full slots, as one batch of commands sees and changes them (the
rules: waitlist_rules.py; the contracts: contracts/booking/waitlist.py).

A request with ``"wait": true`` that finds its slot full is answered ``waitlisted`` and
stays a booking row (status ``waitlisted``: resends and reference conflicts are answered
as for any request) with an entry here. Whenever a decision gives capacity back
(``Ledger.release``: a cancellation, a move away, a declined or expired offer) the freed
slot is offered to its first waiting requests that fit, the capacity taken for them at
once (held offers count in ``slot_usage``, so nothing can take it meanwhile); an accept
confirms the booking, a decline or an expiry releases the capacity to the next in line.
Expiries and slots that began are settled where no-shows are: before each command of the
hub, at its event time, and by the wall-clock sweep of quiet hubs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.booking import (
    BookingConfirmed,
    BookingRequested,
    BookingRequestedV2,
    BookingWaitlisted,
    Consignment,
    SlotOffer,
    WaitlistEnded,
    WaitlistEndReason,
    WaitlistOfferAccept,
    WaitlistOfferDecline,
    WaitlistOffered,
)
from services.booking import domain, requests_v2
from services.booking import waitlist_rules as rules
from services.booking.answers import rejected_v2
from services.booking.decisions import as_document, hub_summary, stored_payload
from services.booking.domain import BookingStatus, HubConfig
from services.booking.ledger import Ledger, Slot
from services.booking.store import StoredBooking, waiting_list
from services.booking.waitlist_rules import WaitingEntry
from services.runtime.db import dialect_name
from services.runtime.uow import UnitOfWork

_ENDINGS = {
    WaitlistEndReason.DECLINED: "the carrier declined; the slot goes to the next in line",
    WaitlistEndReason.OFFER_EXPIRED: "the offer was neither accepted nor declined before it "
    "expired; the slot went to the next in line",
    WaitlistEndReason.SLOT_PASSED: "the slot began before capacity freed for this request",
}


# what _problem says of an answer that was applied already
_REPEAT = ("repeat", "")


def _entry(row: Any) -> WaitingEntry:
    return WaitingEntry(
        booking_id=row.booking_id,
        hub_id=row.hub_id,
        slot_start=row.slot_start,
        volume_l=row.volume_l,
        queued_at=row.queued_at,
        seq=row.seq,
        offered_until=row.offered_until,
    )


# built once, the hubs as an expanding parameter (ledger.py says why)
# what a batch reads of its hubs' waiting lists (probe.py asks whether any row meets it)
OF_HUBS = waiting_list.c.hub_id.in_(bindparam("hub_ids", expanding=True))
_WAITING = select(waiting_list).where(OF_HUBS).order_by(waiting_list.c.booking_id)
_WAITING_LOCKED = _WAITING.with_for_update()


class WaitingList:
    """The waiting entries of a batch's hubs, changed in memory and saved with the batch."""

    def __init__(self, entries: dict[str, WaitingEntry], requests: dict[str, Any]) -> None:
        self.entries = entries
        self.requests = requests  # booking id -> the requested.v2 payload (its stop terms)
        self._new: set[str] = set()
        self._changed: set[str] = set()
        self._gone: set[str] = set()

    @classmethod
    async def load(
        cls, session: AsyncSession, hub_ids: Iterable[str], *, none_waiting: bool = False
    ) -> WaitingList:
        """``none_waiting``: the batch's probe found no entry at these hubs (probe.py)."""
        wanted = sorted(set(hub_ids))
        if not wanted or none_waiting:
            return cls({}, {})
        locked = dialect_name(session) == "postgresql"
        query = _WAITING_LOCKED if locked else _WAITING
        rows = list(await session.execute(query, {"hub_ids": wanted}))
        return cls({r.booking_id: _entry(r) for r in rows}, {r.booking_id: r.request for r in rows})

    @property
    def booking_ids(self) -> list[str]:
        return sorted(self.entries)

    @property
    def slots(self) -> set[Slot]:
        return {(e.hub_id, e.slot_start) for e in self.entries.values()}

    # --- joining ----------------------------------------------------------------------

    def enqueue(
        self,
        *,
        hub: HubConfig,
        booking_id: str,
        command: BookingRequested,
        original: BookingRequestedV2,
        rejection: domain.Rejection,
        next_slots: list[SlotOffer],
        volume_l: int,
        now: datetime,
    ) -> BookingWaitlisted:
        """A request for a full slot joins the slot's waiting list (last in line)."""
        slot = command.slot_start.astimezone(UTC)
        seq = 1 + max((e.seq for e in self.entries.values() if e.hub_id == hub.id), default=0)
        entry = WaitingEntry(booking_id, hub.id, slot, volume_l, now, seq)
        self.entries[booking_id] = entry
        self.requests[booking_id] = original.model_dump(mode="json")
        self._new.add(booking_id)
        return BookingWaitlisted(
            booking_id=booking_id,
            carrier_id=command.carrier_id,
            carrier_reference=command.carrier_reference,
            hub_id=hub.id,
            requested_slot_start=command.slot_start,
            slot_end=slot + hub.slot_length,
            position=rules.position(self.entries.values(), entry),
            reason=rejection.reason,
            message=rejection.message,
            next_slots=next_slots,
        )

    # --- capacity freed, offers ended -------------------------------------------------

    def settle(self, uow: UnitOfWork, ledger: Ledger, hub_id: str, now: datetime) -> None:
        """End the hub's offers that expired and the requests whose slot began, by
        ``now``; what they held goes to the next in line."""
        for entry, why in rules.ended(self.entries.values(), hub_id, now):
            self._end(uow, ledger, entry, why, now)
        self.offer_freed(uow, ledger, now)

    def offer_freed(self, uow: UnitOfWork, ledger: Ledger, now: datetime) -> None:
        """Offer each slot that got capacity back (in the order it did) to its first
        waiting requests that fit."""
        while ledger.freed:
            hub_id, slot = ledger.freed.pop(0)
            hub = ledger.hubs.get(hub_id)
            if hub is None:
                continue
            usage = ledger.usage_of(hub_id, slot)
            for entry in rules.offers(hub, slot, usage, self.entries.values(), now=now):
                taken = ledger.take(hub, slot, entry.volume_l)
                assert taken, "waitlist_rules.offers found room that the ledger has not"
                self._put(entry)
                booking = ledger.find(entry.booking_id)
                assert booking is not None  # loaded with the entries
                assert entry.offered_until is not None
                ledger.transition(booking, BookingStatus.OFFERED, now)
                uow.emit(
                    WaitlistOffered(
                        booking_id=booking.id,
                        carrier_id=booking.carrier_id,
                        carrier_reference=booking.carrier_reference,
                        hub_id=hub_id,
                        slot_start=slot,
                        slot_end=slot + hub.slot_length,
                        offer_expires_at=entry.offered_until,
                    ),
                    key=hub_id,
                    time=now,
                )

    def _put(self, entry: WaitingEntry) -> None:
        self.entries[entry.booking_id] = entry
        self._changed.add(entry.booking_id)

    def _remove(self, booking_id: str) -> WaitingEntry:
        entry = self.entries.pop(booking_id)
        self._gone.add(booking_id)
        return entry

    def _end(
        self,
        uow: UnitOfWork,
        ledger: Ledger,
        entry: WaitingEntry,
        why: WaitlistEndReason,
        now: datetime,
    ) -> None:
        self._remove(entry.booking_id)
        if entry.offered:
            ledger.release(entry.hub_id, entry.slot_start, entry.volume_l)
        booking = ledger.find(entry.booking_id)
        assert booking is not None  # loaded with the entries
        payload = WaitlistEnded(
            booking_id=booking.id,
            carrier_id=booking.carrier_id,
            carrier_reference=booking.carrier_reference,
            hub_id=booking.hub_id,
            requested_slot_start=booking.slot_start,
            reason=why,
            message=_ENDINGS[why],
        )
        ledger.transition(
            booking,
            BookingStatus.WAITLIST_ENDED,
            now,
            outcome=as_document(payload),
            reason=why.value,
            message=_ENDINGS[why],
        )
        uow.emit(payload, key=booking.hub_id, time=now)

    # --- the carrier's answer to an offer ---------------------------------------------

    def answer(
        self,
        uow: UnitOfWork,
        ledger: Ledger,
        command: WaitlistOfferAccept | WaitlistOfferDecline,
        now: datetime,
    ) -> None:
        booking = ledger.find(domain.booking_id_for(command.carrier_id, command.carrier_reference))
        problem = self._problem(command, booking)
        if problem == _REPEAT:  # already done by this very answer: its outcome again
            assert booking is not None
            uow.emit(stored_payload(booking.outcome), key=booking.hub_id, time=now)
            return
        if problem is not None:
            uow.emit(rejected_v2(command, *problem), key=command.hub_id, time=now)
            return
        assert booking is not None
        if isinstance(command, WaitlistOfferDecline):
            self._end(uow, ledger, self.entries[booking.id], WaitlistEndReason.DECLINED, now)
        else:
            self._confirm(uow, ledger, booking, now)

    def _problem(
        self, command: WaitlistOfferAccept | WaitlistOfferDecline, booking: StoredBooking | None
    ) -> tuple[str, str] | None:
        """Why the accept or decline cannot be applied, ``"repeat"`` when it was already,
        None when it can."""
        accept = isinstance(command, WaitlistOfferAccept)
        if booking is None or booking.status is BookingStatus.REJECTED:
            return "no_offer", "no waiting request with this reference"
        if booking.hub_id != command.hub_id:
            return "wrong_hub", f"the request is at hub {booking.hub_id}"
        status = booking.status
        if status is BookingStatus.OFFERED and booking.id in self.entries:
            return None
        if status is BookingStatus.WAITLISTED:
            if not accept:
                return None  # leaving the list before any offer
            entry = self.entries[booking.id]
            place = rules.position(self.entries.values(), entry)
            return "no_offer", f"the request waits at position {place}; no slot was offered yet"
        if status is BookingStatus.WAITLIST_ENDED:
            if not accept and booking.reason == WaitlistEndReason.DECLINED.value:
                return _REPEAT
            if booking.reason == WaitlistEndReason.OFFER_EXPIRED.value:
                return "offer_expired", "the offer expired before this answer; it went on"
            return "no_offer", f"the waiting request has ended ({booking.reason})"
        if accept and status is BookingStatus.CONFIRMED:
            return _REPEAT
        return "no_offer", f"there is no open offer: the booking is {status.value}"

    def _confirm(
        self, uow: UnitOfWork, ledger: Ledger, booking: StoredBooking, now: datetime
    ) -> None:
        hub = ledger.hubs[booking.hub_id]  # a hub with held capacity is not deleted
        self._remove(booking.id)
        payload = BookingConfirmed(
            booking_id=booking.id,
            carrier_id=booking.carrier_id,
            carrier_reference=booking.carrier_reference,
            hub_id=hub.id,
            slot_start=booking.slot_start,
            slot_end=booking.slot_end,
            hub=hub_summary(hub),
            consignment=Consignment.model_validate(booking.request["consignment"]),
        )
        ledger.transition(
            booking,
            BookingStatus.CONFIRMED,
            now,
            outcome=as_document(payload),
            reason=None,
            message=None,
        )
        uow.emit(payload, key=hub.id, time=now)
        original = self.requests.get(booking.id)
        if original is not None:  # its stop terms follow, as for any v2 confirmation
            requests_v2.publish_stop_terms(
                uow, ledger, BookingRequestedV2.model_validate(original), now
            )

    # --- saving -----------------------------------------------------------------------

    async def save(self, session: AsyncSession) -> None:
        gone = self._gone - self._new
        if gone:
            await session.execute(delete(waiting_list).where(waiting_list.c.booking_id.in_(gone)))
        rows = [self._row(i) for i in sorted(self._new) if i in self.entries]
        if rows:
            await session.execute(waiting_list.insert(), rows)
        for booking_id in sorted(self._changed - self._new - self._gone):
            entry = self.entries[booking_id]
            await session.execute(
                waiting_list.update()
                .where(waiting_list.c.booking_id == booking_id)
                .values(offered_until=entry.offered_until)
            )

    def _row(self, booking_id: str) -> dict[str, Any]:
        e = self.entries[booking_id]
        return {
            "booking_id": e.booking_id,
            "hub_id": e.hub_id,
            "slot_start": e.slot_start,
            "volume_l": e.volume_l,
            "queued_at": e.queued_at,
            "seq": e.seq,
            "offered_until": e.offered_until,
            "request": self.requests[booking_id],
        }
