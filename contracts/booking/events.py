"""Events the booking service publishes (through its outbox) to
``microhub.booking.events.v1`` (key: hub id)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field

from contracts.booking.commands import Consignment, StopKind, TimeWindow
from contracts.common import GeoPoint, Identifier, Integer
from contracts.envelope import Payload, message
from contracts.topics import BOOKING_EVENTS


class RejectionReason(StrEnum):
    UNKNOWN_HUB = "unknown_hub"
    HUB_CLOSED = "hub_closed"
    NOT_ON_GRID = "slot_not_on_grid"
    OUTSIDE_OPENING_HOURS = "outside_opening_hours"
    IN_THE_PAST = "slot_in_the_past"
    BEYOND_HORIZON = "slot_beyond_horizon"
    DOCKS_FULL = "slot_docks_full"
    VOLUME_FULL = "slot_volume_full"
    CONSIGNMENT_TOO_LARGE = "consignment_too_large"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    CLOCK_SKEW = "clock_skew"


class CommandRejectionReason(StrEnum):
    UNKNOWN_BOOKING = "unknown_booking"
    NOT_CONFIRMED = "booking_not_confirmed"
    ALREADY_CHECKED_IN = "already_checked_in"
    TOO_EARLY = "check_in_too_early"
    CLOCK_SKEW = "clock_skew"
    WRONG_HUB = "wrong_hub"


class CommandRejectionReasonV2(StrEnum):
    """The reasons ``command_rejected.v2`` carries today. The schema leaves the field open
    (:data:`ReasonCode`): a reason added later is no new contract, and a client treats a
    code it does not know as a refusal, showing the message."""

    INTERNAL_ERROR = "internal_error"
    PARCEL_COUNT_MISMATCH = "parcel_count_mismatch"
    DUPLICATE_STOP_ID = "duplicate_stop_id"
    WINDOW_BACKWARDS = "window_backwards"
    WINDOW_BEFORE_SLOT = "window_before_slot"
    # the hub's no-show rule shortened this carrier's horizon (docs/scorecards.md)
    HORIZON_LIMITED_NO_SHOWS = "horizon_limited_no_shows"


ReasonCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Why the command was refused: a code of lowercase words. Known today: "
        + ", ".join(f"`{r.value}`" for r in CommandRejectionReasonV2)
        + " (README, Rejection reasons). Treat a code you do not know as a refusal.",
        examples=[r.value for r in CommandRejectionReasonV2],
    ),
]


class HubSummary(Payload):
    """What consumers need to know of the hub without reading booking's tables."""

    hub_id: Identifier
    name: str
    city_id: Identifier
    city_name: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    timezone: str
    location: GeoPoint


class SlotOffer(Payload):
    start: AwareDatetime
    end: AwareDatetime
    free_docks: Integer = Field(ge=0)
    free_volume_m3: float = Field(ge=0)


class _BookingEvent(Payload):
    booking_id: str
    carrier_id: Identifier
    carrier_reference: Identifier
    hub_id: Identifier


@message("microhub.booking.confirmed.v1", BOOKING_EVENTS.name)
class BookingConfirmed(_BookingEvent):
    slot_start: AwareDatetime
    slot_end: AwareDatetime
    hub: HubSummary
    consignment: Consignment


@message("microhub.booking.rejected.v1", BOOKING_EVENTS.name)
class BookingRejected(_BookingEvent):
    requested_slot_start: AwareDatetime
    reason: RejectionReason
    message: str
    next_slots: list[SlotOffer] = Field(default_factory=list, max_length=3)


@message("microhub.booking.cancelled.v1", BOOKING_EVENTS.name)
class BookingCancelled(_BookingEvent):
    slot_start: AwareDatetime
    late: bool = Field(description="True when cancelled after the hub's cancellation cutoff.")
    reason: str | None = None


@message("microhub.booking.rescheduled.v1", BOOKING_EVENTS.name)
class BookingRescheduled(_BookingEvent):
    """The booking moved to ``slot_start``: confirmed there, and the capacity it held in
    ``previous_slot_start`` released, in one decision. ``previous_slot_start`` equal to
    ``slot_start``: it already had that slot, and nothing changed."""

    previous_slot_start: AwareDatetime
    previous_slot_end: AwareDatetime
    slot_start: AwareDatetime
    slot_end: AwareDatetime
    late: bool = Field(
        description="True when moved after the hub's cancellation cutoff before the "
        "previous slot (like a late cancellation)."
    )
    moves: Integer = Field(
        ge=0,
        description="How often the booking has been moved, this move included. The same "
        "answer may be published again (a command sent again): a consumer applies a move "
        "only when it is greater than the last it applied.",
    )
    reason: str | None = None


@message("microhub.booking.reschedule_rejected.v1", BOOKING_EVENTS.name)
class BookingRescheduleRejected(_BookingEvent):
    """The booking could not be moved to ``requested_slot_start`` and keeps its slot
    (``slot_start``); ``next_slots``: the next slots that would take it."""

    slot_start: AwareDatetime
    slot_end: AwareDatetime
    requested_slot_start: AwareDatetime
    reason: RejectionReason
    message: str
    next_slots: list[SlotOffer] = Field(default_factory=list, max_length=3)


@message("microhub.booking.consignment_checked_in.v1", BOOKING_EVENTS.name)
class ConsignmentCheckedIn(_BookingEvent):
    slot_start: AwareDatetime
    checked_in_at: AwareDatetime


@message("microhub.booking.no_show.v1", BOOKING_EVENTS.name)
class BookingNoShow(_BookingEvent):
    slot_start: AwareDatetime
    slot_end: AwareDatetime
    detected_at: AwareDatetime


@message("microhub.booking.command_rejected.v1", BOOKING_EVENTS.name)
class BookingCommandRejected(Payload):
    """A cancellation, check-in or reschedule that could not be applied to its booking,
    and why."""

    command_type: str
    carrier_id: Identifier
    carrier_reference: Identifier
    hub_id: Identifier
    booking_id: str | None = None
    reason: CommandRejectionReason
    message: str


class StopTerms(Payload):
    stop_id: Identifier
    kind: StopKind
    window: TimeWindow | None = None


@message("microhub.booking.stop_terms.v1", BOOKING_EVENTS.name)
class BookingStopTerms(_BookingEvent):
    """The per-stop terms of a booking requested with ``microhub.booking.requested.v2``:
    published right after its ``BookingConfirmed`` (same key, same order), for dispatch
    to plan the windows and pickups."""

    slot_start: AwareDatetime
    stops: list[StopTerms] = Field(min_length=1)


@message("microhub.booking.command_rejected.v2", BOOKING_EVENTS.name)
class BookingCommandRejectedV2(Payload):
    """Any command (a booking request, a cancellation or a check-in) the booking service
    answered without a decision on its booking: it breaks a rule JSON Schema cannot
    express, or the service failed on it (``internal_error``: nothing was booked or
    changed; send the command again under a new id). Nothing of it is stored, so the same
    reference may be used again. Unlike ``command_rejected.v1`` its reason is open."""

    command_type: str = Field(description="The `type` of the refused command.")
    carrier_id: Identifier
    carrier_reference: Identifier
    hub_id: Identifier
    booking_id: str | None = Field(
        default=None,
        description="The booking the command is about (derived from carrier and reference; "
        "it may not exist).",
    )
    reason: ReasonCode
    message: str
