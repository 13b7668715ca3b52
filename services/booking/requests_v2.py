"""Requests of ``microhub.booking.requested.v2`` (per-stop time windows and pickups).

Booking decides them exactly like v1 (slot, docks, volume: the stops' kinds and windows
change none of it): ``as_v1`` gives the v1 request to decide, and once it is decided
``publish_stop_terms`` follows a confirmation with ``BookingStopTerms`` (same key, same
transaction, so dispatch reads it right after the ``BookingConfirmed``). The stored
request and the idempotency fingerprint are those of the v1 request: a resend that
changes only windows counts as the same request, and its terms are published again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contracts.booking import (
    BookingRequested,
    BookingRequestedV2,
    BookingStopTerms,
    CommandRejectionReasonV2,
    Consignment,
    DeliveryStop,
    StopTerms,
)
from services.booking import domain
from services.booking.domain import BookingStatus
from services.booking.ledger import Ledger
from services.runtime.uow import UnitOfWork


def as_v1(command: Any) -> Any:
    """The v1 request a v2 request is decided as; any other command unchanged."""
    if not isinstance(command, BookingRequestedV2):
        return command
    c = command.consignment
    return BookingRequested(
        carrier_id=command.carrier_id,
        carrier_reference=command.carrier_reference,
        hub_id=command.hub_id,
        slot_start=command.slot_start,
        consignment=Consignment(
            parcel_count=c.parcel_count,
            weight_kg=c.weight_kg,
            volume_m3=c.volume_m3,
            stops=[
                DeliveryStop(stop_id=s.stop_id, location=s.location, parcels=s.parcels)
                for s in c.stops
            ],
            depot=c.depot,
        ),
    )


def check_windows(command: BookingRequestedV2) -> tuple[CommandRejectionReasonV2, str] | None:
    """The rules of the stops' time windows JSON Schema cannot express: a window ends
    after it starts (``window_backwards``), and after the slot starts, since the
    consignment is at the hub only from then (``window_before_slot``). None when every
    window keeps both; checked before anything is decided, a request that breaks one
    is refused and not stored (the carrier corrects it and sends it again)."""
    for stop in command.consignment.stops:
        window = stop.window
        if window is None:
            continue
        if window.end <= window.start:
            return (
                CommandRejectionReasonV2.WINDOW_BACKWARDS,
                f"stop {stop.stop_id!r}: its window ends ({window.end.isoformat()}) at or "
                f"before it starts ({window.start.isoformat()})",
            )
        if window.end <= command.slot_start:
            return (
                CommandRejectionReasonV2.WINDOW_BEFORE_SLOT,
                f"stop {stop.stop_id!r}: its window ends ({window.end.isoformat()}) at or "
                f"before the slot starts ({command.slot_start.isoformat()}), when the "
                "consignment first is at the hub",
            )
    return None


def publish_stop_terms(uow: UnitOfWork, ledger: Ledger, command: Any, now: datetime) -> None:
    """After a v2 request was decided: its stops' terms, when the booking stands (it was
    confirmed now or before by the same request)."""
    if not isinstance(command, BookingRequestedV2):
        return
    booking = ledger.find(domain.booking_id_for(command.carrier_id, command.carrier_reference))
    if (
        booking is None
        or booking.status not in (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN)
        or booking.request_fingerprint != domain.fingerprint(as_v1(command))
    ):
        return
    uow.emit(
        BookingStopTerms(
            booking_id=booking.id,
            carrier_id=booking.carrier_id,
            carrier_reference=booking.carrier_reference,
            hub_id=booking.hub_id,
            slot_start=booking.slot_start,
            stops=[
                StopTerms(stop_id=s.stop_id, kind=s.kind, window=s.window)
                for s in command.consignment.stops
            ],
        ),
        key=booking.hub_id,
        time=now,
    )
