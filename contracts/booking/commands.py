"""Commands carriers publish to ``microhub.booking.commands.v1`` (key: hub id).

Every command names the carrier and the carrier's own booking reference: together they
are the carrier's idempotency key.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from enum import StrEnum

from pydantic import AwareDatetime, Field

from contracts.common import GeoPoint, Identifier, Integer
from contracts.envelope import Payload, message
from contracts.topics import BOOKING_COMMANDS

MAX_STOPS = 500
BOOKING_ID_NAMESPACE = uuid.UUID("8d0f7c8e-3c5e-4a8e-9d43-6f1f0c2b7a11")
_NAMESPACE_BYTES = BOOKING_ID_NAMESPACE.bytes


@functools.lru_cache(maxsize=65_536)  # asked twice per decision (ledger load, decision)
def booking_id_for(carrier_id: str, carrier_reference: str) -> str:
    """The booking's id, derived from the carrier's idempotency key: known before the
    decision (the HTTP API hands out the poll location at once; the gateway keys what it
    tells a carrier about a booking by it)."""
    # str(uuid.uuid5(BOOKING_ID_NAMESPACE, name)) without the UUID object: 1.4 µs instead
    # of 4 (each new booking's id is made once); tests/unit/test_contracts.py holds them equal
    raw = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + f"{carrier_id}\x1f{carrier_reference}".encode()).digest()
    )
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = raw[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class DeliveryStop(Payload):
    stop_id: Identifier
    location: GeoPoint
    parcels: Integer = Field(ge=1, le=10_000)


class Consignment(Payload):
    """What a carrier brings to the hub. Two rules JSON Schema cannot say: the stops'
    ``parcels`` add up to ``parcel_count``, and no two stops share a ``stop_id``. The
    booking service answers a request that breaks one with
    ``microhub.booking.command_rejected.v2`` (reason ``parcel_count_mismatch`` or
    ``duplicate_stop_id``)."""

    parcel_count: Integer = Field(ge=1, le=100_000)
    weight_kg: float = Field(gt=0, le=40_000, allow_inf_nan=False)
    volume_m3: float = Field(gt=0, le=200, allow_inf_nan=False)
    stops: list[DeliveryStop] = Field(min_length=1, max_length=MAX_STOPS)
    depot: GeoPoint = Field(description="The carrier's depot the consignment comes from.")


class _CarrierCommand(Payload):
    carrier_id: Identifier
    carrier_reference: Identifier
    hub_id: Identifier


@message("microhub.booking.requested.v1", BOOKING_COMMANDS.name)
class BookingRequested(_CarrierCommand):
    """Book the slot starting at ``slot_start`` at a hub for one consignment."""

    slot_start: AwareDatetime
    consignment: Consignment


@message("microhub.booking.cancellation_requested.v1", BOOKING_COMMANDS.name)
class BookingCancellationRequested(_CarrierCommand):
    reason: str | None = Field(default=None, max_length=500)


@message("microhub.booking.reschedule_requested.v1", BOOKING_COMMANDS.name)
class BookingRescheduleRequested(_CarrierCommand):
    """Move the confirmed booking ``carrier_reference`` names to the slot starting at
    ``slot_start`` at the same hub, atomically: the booking service answers
    ``microhub.booking.rescheduled.v1`` (confirmed in the new slot, released from the old)
    or refuses it (``microhub.booking.reschedule_rejected.v1`` with the reason and the next
    free slots, or ``microhub.booking.command_rejected.v1`` for a booking that cannot be
    moved) and the booking keeps its slot. A move to the slot the booking already has is
    answered ``rescheduled`` and changes nothing; so is the very same command sent again."""

    slot_start: AwareDatetime
    reason: str | None = Field(default=None, max_length=500)


@message("microhub.booking.check_in.v1", BOOKING_COMMANDS.name)
class CheckInReported(_CarrierCommand):
    """The ``ConsignmentCheckedIn`` command: the carrier's truck arrived at the hub with
    the consignment (at the envelope's time). Named apart from the ``ConsignmentCheckedIn``
    event the booking service answers with, so the two schemas never share a name."""


# ----------------------------------------------------------------------------- v2 ---


class StopKind(StrEnum):
    DELIVERY = "delivery"
    PICKUP = "pickup"  # parcels collected at the address, brought to the hub for the carrier


class TimeWindow(Payload):
    """When service at a stop may start (the vehicle waits for ``start``; it never
    arrives after ``end``). ``end`` after ``start``, and after the slot starts: JSON
    Schema cannot say either, so the booking service answers a request that breaks one
    with ``microhub.booking.command_rejected.v2`` (reason ``window_backwards`` or
    ``window_before_slot``)."""

    start: AwareDatetime
    end: AwareDatetime


class DeliveryStopV2(Payload):
    stop_id: Identifier
    location: GeoPoint
    parcels: Integer = Field(ge=1, le=10_000, description="delivered, or collected at a pickup")
    kind: StopKind = StopKind.DELIVERY
    window: TimeWindow | None = None


class ConsignmentV2(Payload):
    """A consignment whose stops may have time windows and may be pickups. Weight and
    volume are totals over all stops, pickups included (they come back through the hub).
    The rules JSON Schema cannot say are those of :class:`Consignment` (the stops add up
    to ``parcel_count``, unique ``stop_id``s) and :class:`TimeWindow`'s (each window ends
    after it starts, and after the slot starts): a request that breaks one is answered
    with ``microhub.booking.command_rejected.v2``."""

    parcel_count: Integer = Field(ge=1, le=100_000)
    weight_kg: float = Field(gt=0, le=40_000, allow_inf_nan=False)
    volume_m3: float = Field(gt=0, le=200, allow_inf_nan=False)
    stops: list[DeliveryStopV2] = Field(min_length=1, max_length=MAX_STOPS)
    depot: GeoPoint = Field(description="The carrier's depot the consignment comes from.")


@message("microhub.booking.requested.v2", BOOKING_COMMANDS.name)
class BookingRequestedV2(_CarrierCommand):
    """``microhub.booking.requested.v1`` with per-stop time windows and pickups. Decided
    like v1 (slot, docks, volume); when confirmed, a ``microhub.booking.stop_terms.v1``
    follows the ``BookingConfirmed`` with the stops' kinds and windows."""

    slot_start: AwareDatetime
    consignment: ConsignmentV2
    wait: bool = Field(
        default=False,
        description="When the slot is full (docks or volume), wait on its waiting list "
        "(answered microhub.booking.waitlisted.v1) instead of being rejected: the first "
        "waiting request that fits is offered freed capacity (waitlist_offered.v1).",
    )
