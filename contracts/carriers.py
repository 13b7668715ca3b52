"""What a carrier reads on its own topic, ``microhub.carriers.<carrier>.events.v1`` (key:
booking id), besides the booking events of its own bookings (unchanged): refusals of
commands that never reached booking, and the status of its own deliveries.

Nothing here names another carrier, another carrier's booking or stop, or where anybody
else's customers live: the gateway's egress builds these views from the platform's
internal events, one carrier at a time (services/gateway/egress.py).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field

from contracts.common import Identifier
from contracts.envelope import Payload, message
from contracts.topics import CARRIER_EVENTS, CARRIER_ID_PATTERN

CarrierId = Annotated[str, Field(pattern=CARRIER_ID_PATTERN, max_length=32)]


class RefusalReason(StrEnum):
    # the command names another carrier than the topic it was written to
    CARRIER_MISMATCH = "carrier_mismatch"
    # the topic's carrier is not (or no longer) active in the registry
    UNKNOWN_CARRIER = "unknown_carrier"
    # the command's time is further from its receipt time than the platform allows
    CLOCK_SKEW = "clock_skew"


# Inside the platform a carrier's command travels under an id of the gateway's, derived
# from the carrier, the command's source and its id (two carriers may use the same ids),
# and a source naming the carrier: what booking's inbox knows it by, and what booking's
# answer names. The gateway tells the carrier that answer under the carrier's own id and
# source (it keeps which forwarded id was which command).
FORWARDED_IDS = uuid.UUID("4f6d2a51-7c1e-4d0b-a0a8-3b9d7e5c2f10")
FORWARDED_SOURCE_PREFIX = "microhub/carriers/"


def forwarded_source(carrier_id: str) -> str:
    """The source a carrier's commands travel under past the gateway."""
    return f"{FORWARDED_SOURCE_PREFIX}{carrier_id}"


def forwarded_id(carrier_id: str, source: str, command_id: str) -> str:
    """The id a carrier's command travels under past the gateway."""
    return f"ingress-{uuid.uuid5(FORWARDED_IDS, chr(0x1F).join((carrier_id, source, command_id)))}"


@message("microhub.carriers.command_refused.v1", CARRIER_EVENTS.name)
class CommandRefused(Payload):
    """A command the gateway did not forward to booking, and why. The carrier may resend
    it (corrected) under the same reference: nothing was booked or changed."""

    carrier_id: CarrierId = Field(description="The carrier whose topic the command came on.")
    command_id: str = Field(max_length=200, description="The command's CloudEvents id.")
    command_type: str = Field(max_length=200)
    carrier_reference: Identifier
    hub_id: Identifier
    reason: RefusalReason
    message: str
    received_at: AwareDatetime = Field(description="When the platform received it.")


class DeliveryState(StrEnum):
    PLANNED = "planned"  # on a planned route, with an estimated arrival
    OUT_FOR_DELIVERY = "out_for_delivery"  # its vehicle left the hub
    DELIVERED = "delivered"
    FAILED = "failed"  # this attempt failed; it may be tried again, or returned
    RETURNED = "returned"  # back to the carrier, not delivered


class ProofOfDelivery(Payload):
    """Evidence the hub's driver captured. Held by dispatch; the carrier gets its kind and
    a reference to ask for it, not the evidence itself (a signature or a photo is the
    recipient's personal data)."""

    kind: str = Field(max_length=40, description="e.g. signature, photo, pin, safe_place")
    reference: str | None = Field(default=None, max_length=200)
    captured_at: AwareDatetime | None = None


@message("microhub.carriers.delivery_status.v1", CARRIER_EVENTS.name)
class DeliveryStatus(Payload):
    """The state of one of the carrier's stops (one consignment's delivery to one
    address) as the hub's last mile reports it."""

    carrier_id: CarrierId
    booking_id: str = Field(max_length=100)
    stop_id: Identifier
    hub_id: Identifier
    state: DeliveryState
    at: AwareDatetime = Field(description="When it happened (the platform's event time).")
    route_id: str | None = Field(default=None, max_length=100)
    parcels: int | None = Field(default=None, ge=1)
    eta: AwareDatetime | None = Field(
        default=None,
        description="planned: estimated arrival, the route's planned duration shared out "
        "by distance along it (an estimate, not a promise).",
    )
    reason: str | None = Field(default=None, max_length=200, description="failed, returned")
    attempts: int | None = Field(default=None, ge=0, description="returned: attempts made")
    proof_of_delivery: ProofOfDelivery | None = Field(
        default=None, description="delivered: when dispatch reports one"
    )
