"""Carriers' commands in, booking decisions out.

A fetched batch of commands is decided together, in order, in one transaction: the
ledger (ledger.py) loads what they read with a few statements, the commands are decided
against it in memory with the domain's rules, and the bookings, the slots' usage and the
outgoing events (outbox) are written back with a few statements. Decisions use each
command's event time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.booking import (
    BookingCancellationRequested,
    BookingCancelled,
    BookingConfirmed,
    BookingNoShow,
    BookingRejected,
    BookingRequested,
    BookingRequestedV2,
    BookingRescheduleRequested,
    CheckInReported,
    ConsignmentCheckedIn,
    RejectionReason,
    WaitlistOfferAccept,
    WaitlistOfferDecline,
)
from contracts.booking.series import SeriesCancelRequested, SeriesRequested
from contracts.envelope import Payload
from services.booking import domain, no_show_rule, requests_v2, series, waitlist_rules
from services.booking.closures import ClosureCommand, Closures
from services.booking.decisions import (
    as_document,
    confirmation_document,
    hub_summary,
    stored_payload,
)
from services.booking.domain import BookingStatus, HubConfig
from services.booking.ledger import HubCatalogue, Ledger, Slot
from services.booking.probe import Probe
from services.booking.reschedules import Reschedules
from services.booking.waiting_list import WaitingList
from services.runtime.consumer import Delivery
from services.runtime.uow import UnitOfWork


class BookingHandlers(Reschedules):
    def __init__(self, *, no_show_grace: timedelta) -> None:
        self.no_show_grace = no_show_grace
        self.catalogue = HubCatalogue()

    # ------------------------------------------------------------------ entry points ---

    async def decide(self, uow: UnitOfWork, deliveries: list[Delivery]) -> None:
        """A fetched batch of commands, decided in order (the consumer's batch handler)."""
        if not deliveries:
            return
        commands = [
            (d, requests_v2.as_v1(d.event.data), d.event.time.astimezone(UTC)) for d in deliveries
        ]
        latest: dict[str, datetime] = {}
        for _, command, now in commands:
            latest[command.hub_id] = max(now, latest.get(command.hub_id, now))
        named = [(c.hub_id, c.closure_id) for _, c, _ in commands if isinstance(c, ClosureCommand)]
        since = min(now for _, _, now in commands)
        # one statement instead of four for what most batches' hubs do not have
        probe = await Probe.read(uow.session, latest, since=since)
        hubs = await self.catalogue.current(uow.session, probe.stamps)
        closures = await Closures.load(
            uow.session, latest, since=since, named=named, none_in_force=not probe.closures
        )
        hubs = closures.overlay(hubs)  # closed where an operator closed them
        waiting = await WaitingList.load(uow.session, latest, none_waiting=not probe.waiting)
        ledger = await Ledger.load(
            uow.session,
            hubs,
            booking_ids=[
                *(
                    domain.booking_id_for(c.carrier_id, c.carrier_reference)
                    for _, c, _ in commands
                    if not isinstance(c, ClosureCommand)
                ),
                *waiting.booking_ids,
            ],
            slots=self._wanted_slots(hubs, commands) | waiting.slots,
            no_shows_before={h: t - self.no_show_grace for h, t in latest.items()},
        )
        standing = await series.Standing.load(
            uow.session,
            hubs,
            series_ids=series.named(c for _, c, _ in commands),
            hubs_at=latest,
            none_active=not probe.series,
        )
        for delivery, command, now in commands:
            # Event time moved on for this hub: settle no-shows and the waiting list's
            # expired offers first, so that what follows sees the hub as it is at `now`
            # (same code path as the wall-clock sweep); neither answers a command, nor
            # does a standing booking's next occurrence
            self._no_shows(uow, ledger, command.hub_id, now)
            waiting.settle(uow, ledger, command.hub_id, now)
            if standing.has(command.hub_id):  # most hubs: no coroutine a command for nothing
                await standing.extend(uow, ledger, command.hub_id, now, self.request)
            # what is emitted in here answers this command (services/runtime/answers.py)
            with uow.answering(delivery.event):
                if isinstance(command, BookingRequested):
                    original = delivery.event.data
                    wants = isinstance(original, BookingRequestedV2) and original.wait
                    await self.request(
                        uow, ledger, command, now, sent_as=delivery.event.type,
                        wait=(waiting, original) if wants else None,
                    )  # fmt: skip
                elif isinstance(command, BookingCancellationRequested):
                    self.cancel(uow, ledger, command, now)
                elif isinstance(command, BookingRescheduleRequested):
                    await self.reschedule(uow, ledger, command, now)
                elif isinstance(command, CheckInReported):
                    self.check_in(uow, ledger, command, now)
                elif isinstance(command, SeriesRequested):
                    await standing.request(uow, ledger, command, now, self.request)
                elif isinstance(command, SeriesCancelRequested):
                    await standing.cancel(uow, ledger, command, now, self.cancel)
                elif isinstance(command, WaitlistOfferAccept | WaitlistOfferDecline):
                    waiting.answer(uow, ledger, command, now)
                elif isinstance(command, ClosureCommand):
                    await closures.decide(uow, ledger, command, now)
                else:  # pragma: no cover - the consumer accepts the topic's contracts
                    raise TypeError(f"booking cannot decide {type(command).__name__}")
            # not an answer: a v2 booking's stop terms follow its confirmation
            requests_v2.publish_stop_terms(uow, ledger, delivery.event.data, now)
            # what the command gave back goes to the slots' waiting lists (no answer)
            waiting.offer_freed(uow, ledger, now)
        await ledger.save(uow.session)
        await standing.save(uow.session)
        await waiting.save(uow.session)
        await closures.save(uow.session)

    async def sweep_no_shows(self, uow: UnitOfWork, *, now: datetime) -> int:
        """The wall-clock nudge for quiet hubs: no-shows of every hub up to ``now``,
        through the same ledger and rule as a command's event time."""
        hubs = await self.catalogue.current(uow.session)
        hubs = (await Closures.load(uow.session, hubs, since=now)).overlay(hubs)
        waiting = await WaitingList.load(uow.session, hubs)
        ledger = await Ledger.load(
            uow.session,
            hubs,
            booking_ids=waiting.booking_ids,
            slots=waiting.slots,
            no_shows_before={h: now - self.no_show_grace for h in hubs},
        )
        marked = sum(self._no_shows(uow, ledger, hub_id, now) for hub_id in hubs)
        for hub_id in sorted(hubs):
            waiting.settle(uow, ledger, hub_id, now)
        # and the standing bookings the horizon reached at `now` (series.py)
        standing = await series.Standing.sweep(uow, ledger, now, self.request)
        await ledger.save(uow.session)
        await standing.save(uow.session)
        await waiting.save(uow.session)
        return marked

    @staticmethod
    def _wanted_slots(
        hubs: dict[str, HubConfig], commands: list[tuple[Delivery, Any, datetime]]
    ) -> set[Slot]:
        return {
            (c.hub_id, c.slot_start.astimezone(UTC))
            for _, c, _ in commands
            if isinstance(c, BookingRequested | BookingRescheduleRequested) and c.hub_id in hubs
        }

    # ------------------------------------------------------------------- requests ------

    async def request(
        self,
        uow: UnitOfWork,
        ledger: Ledger,
        command: BookingRequested,
        now: datetime,
        *,
        sent_as: str | None = None,  # the type the carrier sent (a v2 is decided as v1)
        wait: tuple[WaitingList, BookingRequestedV2] | None = None,
    ) -> None:
        """``wait``: the request (as it came) asked to wait when its slot is full."""
        booking_id = domain.booking_id_for(command.carrier_id, command.carrier_reference)
        document = command.model_dump(mode="json")  # stored, and what its fingerprint is of
        slot = command.slot_start.astimezone(UTC)
        fingerprint = domain.fingerprint(command, document, slot)
        existing = ledger.find(booking_id)
        if existing is not None:
            if existing.request_fingerprint == fingerprint:
                # A resend: the carrier gets the original outcome again.
                uow.emit(stored_payload(existing.outcome), key=command.hub_id, time=now)
            else:
                uow.emit(
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

        hub = ledger.hubs.get(command.hub_id)
        limited = await no_show_rule.refusal(uow, ledger, hub, command, slot, now)
        if limited is not None:  # refused, not stored: a nearer slot may be asked for
            limited = limited.model_copy(update={"command_type": sent_as or command.event_type})
            uow.emit(limited, key=command.hub_id, time=now)
            return
        volume_l = domain.litres(command.consignment.volume_m3)
        usage = ledger.usage_of(hub.id, slot) if hub else domain.SlotUsage()
        rejection = domain.check_request(hub, command, now=now, usage=usage)
        if rejection is None:
            assert hub is not None  # check_request rejects an unknown hub (UNKNOWN_HUB)
            taken = ledger.take(hub, slot, volume_l)
            assert taken, "check_request found room that the ledger has not"
        slot_end = slot + hub.slot_length if hub else slot

        outcome: dict[str, Any] | None = None  # the decision's stored form, made once
        if rejection is None:
            assert hub is not None
            confirmed = BookingConfirmed(
                booking_id=booking_id,
                carrier_id=command.carrier_id,
                carrier_reference=command.carrier_reference,
                hub_id=hub.id,
                slot_start=slot,
                slot_end=slot_end,
                hub=hub_summary(hub),
                consignment=command.consignment,
            )
            outcome = confirmation_document(confirmed, document["consignment"], hub)
            payload: Payload = confirmed
            status = BookingStatus.CONFIRMED
        else:
            offers = await self._next_slots(uow.session, ledger, hub, slot, now, volume_l)
            payload = BookingRejected(
                booking_id=booking_id,
                carrier_id=command.carrier_id,
                carrier_reference=command.carrier_reference,
                hub_id=command.hub_id,
                requested_slot_start=command.slot_start,
                reason=rejection.reason,
                message=rejection.message,
                next_slots=offers,
            )
            status = BookingStatus.REJECTED
            if wait is not None and hub is not None and waitlist_rules.may_wait(rejection):
                payload = wait[0].enqueue(
                    hub=hub, booking_id=booking_id, command=command, original=wait[1],
                    rejection=rejection, next_slots=offers, volume_l=volume_l, now=now,
                )  # fmt: skip
                status = BookingStatus.WAITLISTED
        if outcome is None:
            outcome = as_document(payload)
        ledger.add(
            dict(
                id=booking_id,
                carrier_id=command.carrier_id,
                carrier_reference=command.carrier_reference,
                hub_id=command.hub_id,
                slot_start=slot,
                slot_end=slot_end,
                status=status,
                volume_l=volume_l,
                request_fingerprint=fingerprint,
                request=document,
                reason=rejection.reason.value if rejection else None,
                message=rejection.message if rejection else None,
                outcome=outcome,
                cancellation=None,
                check_in=None,
                rescheduled=None,
                decided_at=now,
            )
        )
        uow.emit(payload, key=command.hub_id, time=now, data=outcome["data"])

    # --------------------------------------------------------------- cancellations -----

    def cancel(
        self, uow: UnitOfWork, ledger: Ledger, command: BookingCancellationRequested, now: datetime
    ) -> None:
        booking = ledger.find(domain.booking_id_for(command.carrier_id, command.carrier_reference))
        problem = domain.check_cancellation(
            booking.state if booking else None, hub_id=command.hub_id
        )
        if self._refused_or_repeated(uow, command, booking, problem, now, "cancellation"):
            return
        # check_cancellation finds a problem with no booking, and that is answered above
        assert booking is not None and booking.status is BookingStatus.CONFIRMED
        payload = BookingCancelled(
            booking_id=booking.id,
            carrier_id=booking.carrier_id,
            carrier_reference=booking.carrier_reference,
            hub_id=booking.hub_id,
            slot_start=booking.slot_start,
            late=domain.cancellation_is_late(
                ledger.hubs.get(booking.hub_id), booking.slot_start, now
            ),
            reason=command.reason,
        )
        outcome = as_document(payload)
        ledger.transition(booking, BookingStatus.CANCELLED, now, cancellation=outcome)
        ledger.release(booking.hub_id, booking.slot_start, booking.volume_l)
        uow.emit(payload, key=booking.hub_id, time=now, data=outcome["data"])

    # ------------------------------------------------------------------- check-in ------

    def check_in(
        self, uow: UnitOfWork, ledger: Ledger, command: CheckInReported, now: datetime
    ) -> None:
        booking = ledger.find(domain.booking_id_for(command.carrier_id, command.carrier_reference))
        hub = ledger.hubs.get(booking.hub_id) if booking else None
        problem = domain.check_check_in(
            booking.state if booking else None, hub, hub_id=command.hub_id, now=now
        )
        if self._refused_or_repeated(uow, command, booking, problem, now, "check_in"):
            return
        # check_check_in finds a problem with no booking, and that is answered above
        assert booking is not None and booking.status is BookingStatus.CONFIRMED
        payload = ConsignmentCheckedIn(
            booking_id=booking.id,
            carrier_id=booking.carrier_id,
            carrier_reference=booking.carrier_reference,
            hub_id=booking.hub_id,
            slot_start=booking.slot_start,
            checked_in_at=now,
        )
        outcome = as_document(payload)
        ledger.transition(booking, BookingStatus.CHECKED_IN, now, check_in=outcome)
        uow.emit(payload, key=booking.hub_id, time=now, data=outcome["data"])

    # ------------------------------------------------------------------- no-shows ------

    def _no_shows(self, uow: UnitOfWork, ledger: Ledger, hub_id: str, now: datetime) -> int:
        """Mark the hub's confirmed bookings whose slot ended more than the grace period
        before ``now`` as no-shows (the rule: domain.is_no_show)."""
        marked = 0
        for booking in ledger.due_before(hub_id, now, self.no_show_grace):
            ledger.transition(booking, BookingStatus.NO_SHOW, now)
            uow.emit(
                BookingNoShow(
                    booking_id=booking.id,
                    carrier_id=booking.carrier_id,
                    carrier_reference=booking.carrier_reference,
                    hub_id=booking.hub_id,
                    slot_start=booking.slot_start,
                    slot_end=booking.slot_end,
                    detected_at=now,
                ),
                key=booking.hub_id,
                time=now,
            )
            marked += 1
        return marked
