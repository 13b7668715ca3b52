"""Reschedules: a confirmed booking moved to another slot of its hub in one step."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from contracts.booking import (
    BookingRescheduled,
    BookingRescheduleRejected,
    BookingRescheduleRequested,
    RejectionReason,
)
from services.booking import domain, no_show_rule
from services.booking.decisions import Decisions, as_document, stored_payload
from services.booking.domain import BookingStatus
from services.booking.ledger import Ledger
from services.booking.store import StoredBooking
from services.runtime.uow import UnitOfWork


class Reschedules(Decisions):
    async def reschedule(
        self, uow: UnitOfWork, ledger: Ledger, command: BookingRescheduleRequested, now: datetime
    ) -> None:
        """Move a confirmed booking to another slot of its hub in one step: the new slot
        taken and the old released, or nothing changed and the refusal answered (with the
        next slots that would take it, when the new slot is the problem)."""
        booking = ledger.find(domain.booking_id_for(command.carrier_id, command.carrier_reference))
        problem = domain.check_reschedule(booking.state if booking else None, hub_id=command.hub_id)
        if problem is not None:
            rejected = self._command_rejected(command, booking.id if booking else None, *problem)
            uow.emit(rejected, key=command.hub_id, time=now)
            return
        assert booking is not None and booking.status is BookingStatus.CONFIRMED
        hub = ledger.hubs.get(booking.hub_id)
        target = command.slot_start.astimezone(UTC)
        if target == booking.slot_start:
            # Already there: the answer of the move that brought it there again (this very
            # move, resent under a new id), or, never moved, a move that changes nothing.
            if booking.rescheduled is not None:
                again = stored_payload(booking.rescheduled)
            else:
                again = self._moved(booking, booking, False, command.reason)
            uow.emit(again, key=booking.hub_id, time=now)
            return
        limited = await no_show_rule.refusal(uow, ledger, hub, command, target, now)
        if limited is not None:  # the booking keeps its slot
            uow.emit(limited, key=booking.hub_id, time=now)
            return
        if hub is None:  # a hub is not deleted while it has bookings to come (api.py)
            rejection: domain.Rejection | None = domain.Rejection(
                RejectionReason.UNKNOWN_HUB, f"there is no hub {booking.hub_id!r}"
            )
        else:
            rejection = domain.check_slot_distance(command, now=now) or domain.check_slot(
                hub, target, booking.volume_l / 1000, now=now, usage=ledger.usage_of(hub.id, target)
            )
        if rejection is not None:
            offers = await self._next_slots(
                uow.session, ledger, hub, target, now, booking.volume_l, leaving=booking.slot_start
            )
            uow.emit(
                BookingRescheduleRejected(
                    booking_id=booking.id,
                    carrier_id=booking.carrier_id,
                    carrier_reference=booking.carrier_reference,
                    hub_id=booking.hub_id,
                    slot_start=booking.slot_start,
                    slot_end=booking.slot_end,
                    requested_slot_start=command.slot_start,
                    reason=rejection.reason,
                    message=rejection.message,
                    next_slots=offers,
                ),
                key=booking.hub_id,
                time=now,
            )
            return
        assert hub is not None
        taken = ledger.take(hub, target, booking.volume_l)
        assert taken, "check_slot found room that the ledger has not"
        ledger.release(booking.hub_id, booking.slot_start, booking.volume_l)
        moved = replace(booking, slot_start=target, slot_end=target + hub.slot_length)
        late = domain.reschedule_is_late(hub, booking.slot_start, now)
        payload = self._moved(booking, moved, late, command.reason, moves=booking.moves + 1)
        ledger.transition(
            booking,
            BookingStatus.CONFIRMED,
            now,
            slot_start=moved.slot_start,
            slot_end=moved.slot_end,
            rescheduled=as_document(payload),
            late_moves=booking.late_moves + late,  # scorecards count late moves
        )
        uow.emit(payload, key=booking.hub_id, time=now)

    @staticmethod
    def _moved(
        before: StoredBooking,
        after: StoredBooking,
        late: bool,
        reason: str | None,
        *,
        moves: int | None = None,
    ) -> BookingRescheduled:
        return BookingRescheduled(
            booking_id=before.id,
            carrier_id=before.carrier_id,
            carrier_reference=before.carrier_reference,
            hub_id=before.hub_id,
            previous_slot_start=before.slot_start,
            previous_slot_end=before.slot_end,
            slot_start=after.slot_start,
            slot_end=after.slot_end,
            late=late,
            moves=before.moves if moves is None else moves,
            reason=reason,
        )
