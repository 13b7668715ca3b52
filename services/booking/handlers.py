"""Carriers' commands in, booking decisions out.

Each command is decided in one transaction together with the booking row, the slot's
capacity and the outgoing event (outbox). Decisions use the command's event time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.booking import (
    BookingCancellationRequested,
    BookingCancelled,
    BookingCommandRejected,
    BookingConfirmed,
    BookingNoShow,
    BookingRejected,
    BookingRequested,
    CheckInReported,
    ConsignmentCheckedIn,
    HubSummary,
    RejectionReason,
    SlotOffer,
)
from contracts.booking.events import CommandRejectionReason
from contracts.envelope import REGISTRY, Payload
from services.booking import domain, store
from services.booking.domain import BookingStatus, HubConfig
from services.runtime.consumer import Delivery
from services.runtime.db import rowcount
from services.runtime.uow import UnitOfWork


def hub_summary(hub: HubConfig) -> HubSummary:
    return HubSummary(
        hub_id=hub.id,
        name=hub.name,
        city_id=hub.city.id,
        city_name=hub.city.name,
        country=hub.city.country,
        timezone=hub.city.timezone,
        location=hub.location,
    )


def stored_payload(document: dict[str, Any]) -> Payload:
    """Rebuild an event payload saved as ``{"type": …, "data": …}``."""
    return REGISTRY[document["type"]].model_validate(document["data"])


def as_document(payload: Payload) -> dict[str, Any]:
    return {"type": payload.event_type, "data": payload.model_dump(mode="json")}


# built once, run for every transition; SET: the columns in the parameters
_TRANSITION = update(store.bookings).where(
    store.bookings.c.id == bindparam("b_id"), store.bookings.c.status == bindparam("b_expected")
)


class BookingHandlers:
    def __init__(
        self,
        *,
        max_clock_skew: timedelta,
        no_show_grace: timedelta,
    ) -> None:
        self.max_clock_skew = max_clock_skew
        self.no_show_grace = no_show_grace

    # ------------------------------------------------------------------ entry point ----

    async def on_request(self, uow: UnitOfWork, delivery: Delivery) -> None:
        await self._decide(uow, delivery, self.request)

    async def on_cancellation(self, uow: UnitOfWork, delivery: Delivery) -> None:
        await self._decide(uow, delivery, self.cancel)

    async def on_check_in(self, uow: UnitOfWork, delivery: Delivery) -> None:
        await self._decide(uow, delivery, self.check_in)

    async def _decide(
        self,
        uow: UnitOfWork,
        delivery: Delivery,
        decision: Callable[[UnitOfWork, Any, datetime], Awaitable[None]],
    ) -> None:
        """What every command goes through before its own rule: the clock check, then the
        hub's no-shows settled up to the command's event time."""
        command = delivery.event.data
        now = delivery.event.time.astimezone(UTC)
        if self._skewed(delivery):
            await self._reject_skewed(uow, command, now, delivery)
            return
        # Event time moved on for this hub: settle no-shows first, so that what follows
        # sees the hub as it is at `now` (same code path as the wall-clock sweep).
        await self.sweep_no_shows(uow, command.hub_id, now=now)
        await decision(uow, command, now)

    def _skewed(self, delivery: Delivery) -> bool:
        if not self.max_clock_skew or delivery.timestamp_ms is None or delivery.timestamp_ms < 0:
            return False
        record_time = datetime.fromtimestamp(delivery.timestamp_ms / 1000, UTC)
        return abs(delivery.event.time - record_time) > self.max_clock_skew

    async def _reject_skewed(
        self, uow: UnitOfWork, command: Any, now: datetime, delivery: Delivery
    ) -> None:
        record_time = datetime.fromtimestamp((delivery.timestamp_ms or 0) / 1000, UTC)
        message = (
            f"the command's time {now.isoformat()} is more than {self.max_clock_skew} away from "
            f"its Kafka record timestamp {record_time.isoformat()}; check the sender's clock"
        )
        # Not stored: a transport problem, the carrier may resend with a correct clock.
        if isinstance(command, BookingRequested):
            payload: Payload = BookingRejected(
                booking_id=domain.booking_id_for(command.carrier_id, command.carrier_reference),
                carrier_id=command.carrier_id,
                carrier_reference=command.carrier_reference,
                hub_id=command.hub_id,
                requested_slot_start=command.slot_start,
                reason=RejectionReason.CLOCK_SKEW,
                message=message,
            )
        else:
            payload = self._command_rejected(
                command, None, CommandRejectionReason.CLOCK_SKEW, message
            )
        await uow.emit(payload, key=command.hub_id, time=record_time)

    @staticmethod
    def _command_rejected(
        command: Any, booking_id: str | None, reason: CommandRejectionReason, message: str
    ) -> BookingCommandRejected:
        return BookingCommandRejected(
            command_type=command.event_type,
            carrier_id=command.carrier_id,
            carrier_reference=command.carrier_reference,
            hub_id=command.hub_id,
            booking_id=booking_id,
            reason=reason,
            message=message,
        )

    # ------------------------------------------------------------------- requests ------

    async def request(self, uow: UnitOfWork, command: BookingRequested, now: datetime) -> None:
        booking_id = domain.booking_id_for(command.carrier_id, command.carrier_reference)
        existing = await store.find_booking(
            uow.session, command.carrier_id, command.carrier_reference
        )
        if existing is not None:
            if existing.request_fingerprint == domain.fingerprint(command):
                # A resend: the carrier gets the original outcome again.
                await uow.emit(stored_payload(existing.outcome), key=command.hub_id, time=now)
            else:
                await uow.emit(
                    BookingRejected(
                        booking_id=existing.id,
                        carrier_id=command.carrier_id,
                        carrier_reference=command.carrier_reference,
                        hub_id=command.hub_id,
                        requested_slot_start=command.slot_start,
                        reason=RejectionReason.IDEMPOTENCY_CONFLICT,
                        message=(
                            f"reference {command.carrier_reference!r} was already used for "
                            f"a different request (booking {existing.id} is "
                            f"{existing.status.value}); use a new reference for a new booking"
                        ),
                    ),
                    key=command.hub_id,
                    time=now,
                )
            return

        hub = await store.get_hub(uow.session, command.hub_id)
        slot = command.slot_start.astimezone(UTC)
        volume_l = domain.litres(command.consignment.volume_m3)
        usage = await store.usage_of(uow.session, hub.id, slot) if hub else domain.SlotUsage()
        rejection = domain.check_request(hub, command, now=now, usage=usage)
        if rejection is None:
            assert hub is not None  # check_request rejects an unknown hub (UNKNOWN_HUB)
            if not await store.take_capacity(uow.session, hub, slot, volume_l):
                # Someone else took it between our read and our write (overlapping consumers).
                usage = await store.usage_of(uow.session, hub.id, slot)
                rejection = domain.check_request(
                    hub, command, now=now, usage=usage
                ) or domain.Rejection(RejectionReason.DOCKS_FULL, "the slot was taken concurrently")
        slot_end = slot + hub.slot_length if hub else slot

        if rejection is None:
            assert hub is not None
            payload: Payload = BookingConfirmed(
                booking_id=booking_id,
                carrier_id=command.carrier_id,
                carrier_reference=command.carrier_reference,
                hub_id=hub.id,
                slot_start=slot,
                slot_end=slot_end,
                hub=hub_summary(hub),
                consignment=command.consignment,
            )
            status = BookingStatus.CONFIRMED
        else:
            payload = BookingRejected(
                booking_id=booking_id,
                carrier_id=command.carrier_id,
                carrier_reference=command.carrier_reference,
                hub_id=command.hub_id,
                requested_slot_start=command.slot_start,
                reason=rejection.reason,
                message=rejection.message,
                next_slots=await self._next_slots(uow.session, hub, slot, now, volume_l),
            )
            status = BookingStatus.REJECTED
        await store.insert_booking(
            uow.session,
            id=booking_id,
            carrier_id=command.carrier_id,
            carrier_reference=command.carrier_reference,
            hub_id=command.hub_id,
            slot_start=slot,
            slot_end=slot_end,
            status=status,
            volume_l=volume_l,
            request_fingerprint=domain.fingerprint(command),
            request=command.model_dump(mode="json"),
            reason=rejection.reason.value if rejection else None,
            message=rejection.message if rejection else None,
            outcome=as_document(payload),
            decided_at=now,
        )
        await uow.emit(payload, key=command.hub_id, time=now)

    async def _next_slots(
        self,
        session: AsyncSession,
        hub: HubConfig | None,
        slot: datetime,
        now: datetime,
        volume_l: int,
    ) -> list[SlotOffer]:
        if hub is None:
            return []
        horizon_end = now + timedelta(days=hub.booking_horizon_days)
        usage = await store.usage_between(session, hub.id, now, horizon_end + timedelta(seconds=1))
        after = slot if slot > now else now
        offers = domain.next_fitting_slots(
            hub, after=after, now=now, volume_l=volume_l, usage=usage
        )
        return [
            SlotOffer(
                start=o.start,
                end=o.end,
                free_docks=o.free_docks,
                free_volume_m3=o.free_volume_l / 1000,
            )
            for o in offers
        ]

    # --------------------------------------------------------------- cancellations -----

    async def cancel(
        self, uow: UnitOfWork, command: BookingCancellationRequested, now: datetime
    ) -> None:
        booking = await store.find_booking(
            uow.session, command.carrier_id, command.carrier_reference
        )
        problem = domain.check_cancellation(
            booking.state if booking else None, hub_id=command.hub_id
        )
        if await self._refused_or_repeated(uow, command, booking, problem, now, "cancellation"):
            return
        # check_cancellation finds a problem with no booking, and that is answered above
        assert booking is not None
        hub = await store.get_hub(uow.session, booking.hub_id)
        payload = BookingCancelled(
            booking_id=booking.id,
            carrier_id=booking.carrier_id,
            carrier_reference=booking.carrier_reference,
            hub_id=booking.hub_id,
            slot_start=booking.slot_start,
            late=domain.cancellation_is_late(hub, booking.slot_start, now),
            reason=command.reason,
        )
        if await self._transition(
            uow.session, booking.id, BookingStatus.CONFIRMED, BookingStatus.CANCELLED, now,
            cancellation=as_document(payload),
        ):  # fmt: skip
            await store.release_capacity(
                uow.session, booking.hub_id, booking.slot_start, booking.volume_l
            )
            await uow.emit(payload, key=booking.hub_id, time=now)

    # ------------------------------------------------------------------- check-in ------

    async def check_in(self, uow: UnitOfWork, command: CheckInReported, now: datetime) -> None:
        booking = await store.find_booking(
            uow.session, command.carrier_id, command.carrier_reference
        )
        hub = await store.get_hub(uow.session, booking.hub_id) if booking else None
        problem = domain.check_check_in(
            booking.state if booking else None, hub, hub_id=command.hub_id, now=now
        )
        if await self._refused_or_repeated(uow, command, booking, problem, now, "check_in"):
            return
        # check_check_in finds a problem with no booking, and that is answered above
        assert booking is not None
        payload = ConsignmentCheckedIn(
            booking_id=booking.id,
            carrier_id=booking.carrier_id,
            carrier_reference=booking.carrier_reference,
            hub_id=booking.hub_id,
            slot_start=booking.slot_start,
            checked_in_at=now,
        )
        if await self._transition(
            uow.session, booking.id, BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, now,
            check_in=as_document(payload),
        ):  # fmt: skip
            await uow.emit(payload, key=booking.hub_id, time=now)

    async def _refused_or_repeated(
        self,
        uow: UnitOfWork,
        command: Any,
        booking: store.StoredBooking | None,
        problem: tuple[CommandRejectionReason, str] | None,
        now: datetime,
        stored: str,
    ) -> bool:
        """Answer a cancellation or check-in that changes nothing: refused (with the
        reason), or already applied (the stored outcome again). True when answered."""
        if problem is not None:
            rejected = self._command_rejected(command, booking.id if booking else None, *problem)
            await uow.emit(rejected, key=command.hub_id, time=now)
            return True
        assert booking is not None
        previous = getattr(booking, stored)
        if previous is not None:
            await uow.emit(stored_payload(previous), key=booking.hub_id, time=now)
            return True
        return False

    # ------------------------------------------------------------------- no-shows ------

    async def sweep_no_shows(self, uow: UnitOfWork, hub_id: str, *, now: datetime) -> int:
        """Mark confirmed bookings whose slot ended more than the grace period before
        ``now`` as no-shows. Called with each command's event time, and by the timer."""
        due = await store.due_no_shows(
            uow.session, hub_id, slot_end_before=now - self.no_show_grace
        )
        marked = 0
        for booking in due:
            # the query narrows it down by index; the rule itself is the domain's
            if not domain.is_no_show(booking.state, now=now, grace=self.no_show_grace):
                continue
            if await self._transition(
                uow.session, booking.id, BookingStatus.CONFIRMED, BookingStatus.NO_SHOW, now
            ):
                payload = BookingNoShow(
                    booking_id=booking.id,
                    carrier_id=booking.carrier_id,
                    carrier_reference=booking.carrier_reference,
                    hub_id=booking.hub_id,
                    slot_start=booking.slot_start,
                    slot_end=booking.slot_end,
                    detected_at=now,
                )
                await uow.emit(payload, key=booking.hub_id, time=now)
                marked += 1
        return marked

    @staticmethod
    async def _transition(
        session: AsyncSession,
        booking_id: str,
        expected: BookingStatus,
        new: BookingStatus,
        now: datetime,
        **values: Any,
    ) -> bool:
        """Compare-and-set on the status, so a timer sweep and a consumer never both win."""
        result = await session.execute(
            _TRANSITION,
            {
                "b_id": booking_id,
                "b_expected": expected.value,
                "status": new.value,
                "updated_at": now,
                **values,
            },
        )
        return rowcount(result) == 1
