"""The waiting list of a full slot (issue 16): a ``microhub.booking.requested.v2`` with
``"wait": true`` that finds its slot full is put on the slot's waiting list instead of
being rejected; when capacity frees, the first waiting request that fits is *offered* the
slot for a limited time, with the capacity held for it, and accepts or declines.

A waiting request ends exactly once: ``microhub.booking.confirmed.v1`` (the offer
accepted) or ``microhub.booking.waitlist_ended.v1`` (declined, the offer expired, or the
slot began without an offer)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from contracts.booking.commands import _CarrierCommand
from contracts.booking.events import RejectionReason, SlotOffer, _BookingEvent
from contracts.common import Integer
from contracts.envelope import message
from contracts.topics import BOOKING_COMMANDS, BOOKING_EVENTS

# ------------------------------------------------------------------------- commands ---


@message("microhub.booking.waitlist_offer_accept.v1", BOOKING_COMMANDS.name)
class WaitlistOfferAccept(_CarrierCommand):
    """Take the slot offered to the waiting request ``carrier_reference`` names
    (``microhub.booking.waitlist_offered.v1``) before the offer expires: answered
    ``microhub.booking.confirmed.v1`` (the booking is confirmed in the offered slot), or
    ``microhub.booking.command_rejected.v2`` (``no_offer``, ``offer_expired``,
    ``wrong_hub``)."""


@message("microhub.booking.waitlist_offer_decline.v1", BOOKING_COMMANDS.name)
class WaitlistOfferDecline(_CarrierCommand):
    """Decline the slot offered to the waiting request ``carrier_reference`` names, or
    leave the waiting list before any offer: answered
    ``microhub.booking.waitlist_ended.v1`` (``declined``); the slot goes to the next in
    line."""

    reason: str | None = Field(default=None, max_length=500)


# --------------------------------------------------------------------------- events ---


class WaitlistEndReason(StrEnum):
    DECLINED = "declined"  # the carrier declined the offer, or left the list
    OFFER_EXPIRED = "offer_expired"  # the offer was neither accepted nor declined in time
    SLOT_PASSED = "slot_passed"  # the slot began while the request was still waiting


@message("microhub.booking.waitlisted.v1", BOOKING_EVENTS.name)
class BookingWaitlisted(_BookingEvent):
    """The answer to a request with ``"wait": true`` whose slot is full: it waits on the
    slot's waiting list (first come, first served by the request's time), at
    ``position`` (1: next in line). No capacity is held yet; ``reason``/``message`` say
    why the slot is full and ``next_slots`` lists slots that would take it now."""

    requested_slot_start: AwareDatetime
    slot_end: AwareDatetime
    position: Integer = Field(ge=1, description="1: the next request offered a freed slot.")
    reason: RejectionReason
    message: str
    next_slots: list[SlotOffer] = Field(default_factory=list, max_length=3)


@message("microhub.booking.waitlist_offered.v1", BOOKING_EVENTS.name)
class WaitlistOffered(_BookingEvent):
    """Capacity freed in the slot a request waits for: it is held for this request until
    ``offer_expires_at`` (event time). Send ``microhub.booking.waitlist_offer_accept.v1``
    to take it, ``…_decline.v1`` to let the next in line have it. Answers no command."""

    slot_start: AwareDatetime
    slot_end: AwareDatetime
    offer_expires_at: AwareDatetime


@message("microhub.booking.waitlist_ended.v1", BOOKING_EVENTS.name)
class WaitlistEnded(_BookingEvent):
    """A waiting request's end without a booking (its final outcome): ``declined`` answers
    the decline command; ``offer_expired`` and ``slot_passed`` answer no command."""

    requested_slot_start: AwareDatetime
    reason: WaitlistEndReason
    message: str
