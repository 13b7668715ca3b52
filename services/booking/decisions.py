"""What every booking decision shares: stored outcomes read back, the command refusal,
the next slots offered instead of a refused one, and the answer to a command that
changes nothing. The deciders (handlers.py, reschedules.py) build on ``Decisions``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.booking import BookingCommandRejected, BookingConfirmed, HubSummary, SlotOffer
from contracts.booking.events import CommandRejectionReason
from contracts.envelope import REGISTRY, Payload
from services.booking import domain
from services.booking.domain import HubConfig
from services.booking.ledger import Ledger
from services.booking.store import StoredBooking
from services.runtime.uow import UnitOfWork

# hub (by identity) -> (the hub, its summary, the summary's JSON form): every
# confirmation carries one, and a hub's config object stays the same from batch to batch
# (ledger.HubCatalogue) until the hub changes, so each is made once per hub
_SUMMARIES: dict[int, tuple[HubConfig, HubSummary, dict[str, Any]]] = {}


def _summary_of(hub: HubConfig) -> tuple[HubConfig, HubSummary, dict[str, Any]]:
    known = _SUMMARIES.get(id(hub))
    if known is not None and known[0] is hub:  # the same object, not a reused id
        return known
    summary = HubSummary(
        hub_id=hub.id,
        name=hub.name,
        city_id=hub.city.id,
        city_name=hub.city.name,
        country=hub.city.country,
        timezone=hub.city.timezone,
        location=hub.location,
    )
    if len(_SUMMARIES) >= 4096:  # closures lay fresh hub objects over closed hubs
        _SUMMARIES.clear()
    known = _SUMMARIES[id(hub)] = (hub, summary, summary.model_dump(mode="json"))
    return known


def hub_summary(hub: HubConfig) -> HubSummary:
    return _summary_of(hub)[1]


def stored_payload(document: dict[str, Any]) -> Payload:
    """Rebuild an event payload saved as ``{"type": …, "data": …}``."""
    return REGISTRY[document["type"]].model_validate(document["data"])


def as_document(payload: Payload) -> dict[str, Any]:
    return {"type": payload.event_type, "data": payload.model_dump(mode="json")}


# pydantic's own JSON form of an instant ("…Z" for UTC), the one model_dump writes
_INSTANT = TypeAdapter(AwareDatetime).serializer


def confirmation_document(
    payload: BookingConfirmed, consignment: dict[str, Any], hub: HubConfig
) -> dict[str, Any]:
    """``as_document(payload)`` for a confirmation at ``hub``, built from parts already in
    JSON form: the consignment as the request's own ``model_dump(mode="json")`` holds it
    (the same model, dumped the same way), the hub's summary dumped once per hub. Dumping
    the whole confirmation was ~9 µs of every confirmed request
    (docs/booking-throughput.md); what the parts are is asserted against ``as_document``
    in tests/unit/test_confirmation_document.py."""
    _, summary, summary_document = _summary_of(hub)
    if payload.hub is not summary:  # a summary made elsewhere: dumped as it is
        summary_document = payload.hub.model_dump(mode="json")
    return {
        "type": BookingConfirmed.event_type,
        "data": {
            "booking_id": payload.booking_id,
            "carrier_id": payload.carrier_id,
            "carrier_reference": payload.carrier_reference,
            "hub_id": payload.hub_id,
            "slot_start": _INSTANT.to_python(payload.slot_start, mode="json"),
            "slot_end": _INSTANT.to_python(payload.slot_end, mode="json"),
            "hub": summary_document,
            "consignment": consignment,
        },
    }


class Decisions:
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

    async def _next_slots(
        self,
        session: AsyncSession,
        ledger: Ledger,
        hub: HubConfig | None,
        slot: datetime,
        now: datetime,
        volume_l: int,
        leaving: datetime | None = None,
    ) -> list[SlotOffer]:
        """The next slots after ``slot`` that would take ``volume_l`` (not ``leaving``:
        the slot a booking that is to be moved has already)."""
        if hub is None:
            return []
        horizon_end = now + timedelta(days=hub.booking_horizon_days)
        usage = await ledger.horizon(session, hub, now, horizon_end + timedelta(seconds=1))
        after = slot if slot > now else now
        offers = domain.next_fitting_slots(
            hub, after=after, now=now, volume_l=volume_l, usage=usage, skip=leaving
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

    def _refused_or_repeated(
        self,
        uow: UnitOfWork,
        command: Any,
        booking: StoredBooking | None,
        problem: tuple[CommandRejectionReason, str] | None,
        now: datetime,
        stored: str,
    ) -> bool:
        """Answer a cancellation or check-in that changes nothing: refused (with the
        reason), or already applied (the stored outcome again). True when answered."""
        if problem is not None:
            rejected = self._command_rejected(command, booking.id if booking else None, *problem)
            uow.emit(rejected, key=command.hub_id, time=now)
            return True
        assert booking is not None
        previous = getattr(booking, stored)
        if previous is not None:
            uow.emit(stored_payload(previous), key=booking.hub_id, time=now)
            return True
        return False
