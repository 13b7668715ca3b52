"""Hub closures (issue 16): a hub operator closes a range of a hub's slots (a breakdown,
a holiday) and lifts it again. The HTTP API (``POST``/``DELETE
/v1/hubs/{hub}/closures``, operator keys of that hub) publishes these commands to
``microhub.booking.commands.v1`` keyed by the hub, so that a closure is decided in order
with the hub's bookings; carriers cannot send them (the gateway forwards carriers'
commands only)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field

from contracts.booking.events import SlotOffer, _BookingEvent
from contracts.common import Identifier, Integer
from contracts.envelope import Payload, message
from contracts.topics import BOOKING_COMMANDS, BOOKING_EVENTS

Who = Annotated[
    str, Field(min_length=1, max_length=200, description="The operator (its API key's name).")
]
Why = Annotated[str, Field(min_length=1, max_length=500)]

# ------------------------------------------------------------------------- commands ---


@message("microhub.booking.hub_closure_requested.v1", BOOKING_COMMANDS.name)
class HubClosureRequested(Payload):
    """Close the hub's slots that overlap ``[starts_at, ends_at)``: new requests and moves
    into them are rejected (``hub_closed``); the carrier of each confirmed booking there is
    told (``microhub.booking.closure_affected.v1``). Answered
    ``microhub.booking.hub_closure_declared.v1`` or ``…hub_closure_rejected.v1``."""

    hub_id: Identifier
    closure_id: Identifier
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: Why
    requested_by: Who


@message("microhub.booking.hub_closure_lift_requested.v1", BOOKING_COMMANDS.name)
class HubClosureLiftRequested(Payload):
    """Lift the closure ``closure_id``: its slots take bookings again (and are offered to
    their waiting lists). Answered ``…hub_closure_lifted.v1`` or ``…hub_closure_rejected.v1``."""

    hub_id: Identifier
    closure_id: Identifier
    reason: str | None = Field(default=None, max_length=500)
    requested_by: Who


# --------------------------------------------------------------------------- events ---


class ClosureRejectionReason(StrEnum):
    UNKNOWN_HUB = "unknown_hub"
    UNKNOWN_CLOSURE = "unknown_closure"  # no closure with this id at this hub
    EMPTY_RANGE = "empty_range"  # ends_at is not after starts_at
    CLOSURE_CONFLICT = "closure_conflict"  # the id was used for another closure
    INTERNAL_ERROR = "internal_error"  # the service failed on it; nothing changed


@message("microhub.booking.hub_closure_declared.v1", BOOKING_EVENTS.name)
class HubClosureDeclared(Payload):
    """The hub is closed for the slots overlapping ``[starts_at, ends_at)`` (who and why);
    ``affected_bookings`` confirmed bookings there were told."""

    hub_id: Identifier
    closure_id: Identifier
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str
    closed_by: str
    affected_bookings: Integer = Field(ge=0)


@message("microhub.booking.hub_closure_lifted.v1", BOOKING_EVENTS.name)
class HubClosureLifted(Payload):
    """The closure is lifted: its slots take bookings again (who and why)."""

    hub_id: Identifier
    closure_id: Identifier
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str | None = None
    lifted_by: str


@message("microhub.booking.hub_closure_rejected.v1", BOOKING_EVENTS.name)
class HubClosureRejected(Payload):
    """A closure or lift that was not applied, and why; nothing changed."""

    command_type: str
    hub_id: Identifier
    closure_id: Identifier
    reason: ClosureRejectionReason
    message: str


@message("microhub.booking.closure_affected.v1", BOOKING_EVENTS.name)
class BookingAffectedByClosure(_BookingEvent):
    """For the carrier of a confirmed booking in a slot the hub closed: the booking stays
    confirmed, but the hub cannot take it then. Move it with one
    ``microhub.booking.reschedule_requested.v1`` (``next_slots``: slots outside every
    closure that would take it now), or cancel it. Answers no command."""

    slot_start: AwareDatetime
    slot_end: AwareDatetime
    closure_id: Identifier
    closed_from: AwareDatetime
    closed_until: AwareDatetime
    reason: str
    next_slots: list[SlotOffer] = Field(default_factory=list, max_length=3)
