"""How the booking service answers carriers' commands beyond deciding them (the runtime
side is services/runtime/answers.py): which of its events answer a command, the rules
checked before a decision, and the answer when deciding failed.

Refusals here are not stored (like ``clock_skew``): a carrier corrects the command and
sends it again under the same reference. They use ``command_rejected.v2`` where the
reason is new (its reason is open), and the v1 types where a v1 reason says it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts.booking import (
    BookingCancelled,
    BookingCommandRejected,
    BookingCommandRejectedV2,
    BookingConfirmed,
    BookingRejected,
    BookingRequested,
    BookingRequestedV2,
    BookingRescheduled,
    BookingRescheduleRejected,
    BookingRescheduleRequested,
    BookingWaitlisted,
    ClosureRejectionReason,
    CommandRejectionReasonV2,
    ConsignmentCheckedIn,
    HubClosureDeclared,
    HubClosureLifted,
    HubClosureLiftRequested,
    HubClosureRejected,
    HubClosureRequested,
    RejectionReason,
    WaitlistEnded,
)
from contracts.booking.events import CommandRejectionReason
from contracts.booking.series import (
    SeriesAccepted,
    SeriesCancelled,
    SeriesRejected,
    SeriesRequested,
)
from contracts.envelope import CloudEvent, Payload
from services.booking import domain, requests_v2, series
from services.runtime.answers import Answer, Answering

# the events that answer a command; a no-show answers none
ANSWER_TYPES = frozenset(
    model.event_type
    for model in (
        BookingConfirmed,
        BookingRejected,
        BookingCancelled,
        BookingRescheduled,
        BookingRescheduleRejected,
        ConsignmentCheckedIn,
        BookingCommandRejected,
        BookingCommandRejectedV2,
        BookingWaitlisted,
        WaitlistEnded,  # a decline's answer (an expiry's ending answers nothing)
        HubClosureDeclared,
        HubClosureLifted,
        HubClosureRejected,
        SeriesAccepted,
        SeriesRejected,
        SeriesCancelled,
    )
)


def closure_failed(
    command: HubClosureRequested | HubClosureLiftRequested, error: BaseException
) -> HubClosureRejected:
    return HubClosureRejected(
        command_type=command.event_type,
        hub_id=command.hub_id,
        closure_id=command.closure_id,
        reason=ClosureRejectionReason.INTERNAL_ERROR,
        message=f"the booking service failed on this command ({type(error).__name__}) and "
        "changed nothing; send it again",
    )


def rejected_v2(command: Any, reason: str, message: str) -> BookingCommandRejectedV2:
    return BookingCommandRejectedV2(
        command_type=command.event_type,
        carrier_id=command.carrier_id,
        carrier_reference=command.carrier_reference,
        hub_id=command.hub_id,
        booking_id=domain.booking_id_for(command.carrier_id, command.carrier_reference),
        reason=reason,
        message=message,
    )


def clock_skew(command: Any, message: str) -> Payload:
    """The answer to a command whose time cannot be trusted (the sender's clock): a
    request is rejected, any other command refused; nothing is stored, so the carrier
    may send it again with a correct clock. (The receipt-time check is the gateway's.)"""
    if isinstance(command, BookingRequested | BookingRequestedV2):
        return BookingRejected(
            booking_id=domain.booking_id_for(command.carrier_id, command.carrier_reference),
            carrier_id=command.carrier_id,
            carrier_reference=command.carrier_reference,
            hub_id=command.hub_id,
            requested_slot_start=command.slot_start,
            reason=RejectionReason.CLOCK_SKEW,
            message=message,
        )
    return BookingCommandRejected(
        command_type=command.event_type,
        carrier_id=command.carrier_id,
        carrier_reference=command.carrier_reference,
        hub_id=command.hub_id,
        reason=CommandRejectionReason.CLOCK_SKEW,
        message=message,
    )


def refusal(
    command: BookingRequested, now: datetime
) -> BookingRejected | BookingCommandRejectedV2 | None:
    """A booking request refused before it is decided (and not stored): its consignment
    breaks a rule its schema cannot express, or its slot is further from ``now`` than any
    hub's horizon reaches. The HTTP API asks the same before it sends a request."""
    problem = domain.check_consignment(command.consignment)
    if problem is not None:
        return rejected_v2(command, *problem)
    far = domain.check_slot_distance(command, now=now)
    if far is not None:
        return BookingRejected(
            booking_id=domain.booking_id_for(command.carrier_id, command.carrier_reference),
            carrier_id=command.carrier_id,
            carrier_reference=command.carrier_reference,
            hub_id=command.hub_id,
            requested_slot_start=command.slot_start,
            reason=far.reason,
            message=far.message,
        )
    return None


def reschedule_refusal(
    command: BookingRescheduleRequested, now: datetime
) -> BookingCommandRejectedV2 | None:
    """A reschedule whose new slot is further from ``now`` than any hub's horizon reaches
    (or a day and more past), refused before it is decided: the booking is not looked at
    and keeps its slot. ``command_rejected.v2`` (its reason is open): the reason is a
    request's (``slot_beyond_horizon``, ``slot_in_the_past``)."""
    far = domain.check_slot_distance(command, now=now)
    return rejected_v2(command, far.reason.value, far.message) if far is not None else None


class BookingAnswers(Answering):
    types = ANSWER_TYPES

    def refuse(self, command: CloudEvent[Any]) -> Answer | None:
        data = command.data
        if isinstance(data, HubClosureRequested | HubClosureLiftRequested):
            return None  # an operator's, from the HTTP API (its clock): decided as it came
        if not domain.time_is_usable(command.time):
            message = (
                f"the command's time {command.time.isoformat()} is at the edge of the "
                "calendar; check the sender's clock"
            )
            return Answer(clock_skew(data, message), key=data.hub_id)
        if isinstance(data, BookingRequestedV2):
            windows = requests_v2.check_windows(data)
            if windows is not None:
                return Answer(rejected_v2(data, *windows), key=data.hub_id)
        if isinstance(data, BookingRequested | BookingRequestedV2):
            # a v2 request keeps the rules of the v1 request it is decided as
            refused = refusal(requests_v2.as_v1(data), command.time.astimezone(UTC))
            if isinstance(refused, BookingCommandRejectedV2):
                refused = refused.model_copy(update={"command_type": data.event_type})
            if refused is not None:
                return Answer(refused, key=data.hub_id)
        if isinstance(data, SeriesRequested):  # a rule that is refused (series.py)
            bad_rule = series.refusal(data)
            if bad_rule is not None:
                return Answer(bad_rule, key=data.hub_id)
        if isinstance(data, BookingRescheduleRequested):
            moved = reschedule_refusal(data, command.time.astimezone(UTC))
            if moved is not None:
                return Answer(moved, key=data.hub_id)
        return None

    def failed(self, command: CloudEvent[Any], error: BaseException) -> Answer | None:
        data = command.data
        if isinstance(data, HubClosureRequested | HubClosureLiftRequested):
            return Answer(closure_failed(data, error), key=data.hub_id)
        message = (
            f"the booking service failed on this command ({type(error).__name__}) and decided "
            "nothing: nothing was booked, moved, cancelled or checked in. Send it again under a new "
            "id; if that fails too, give the hub operator this command's source and id."
        )
        return Answer(
            rejected_v2(data, CommandRejectionReasonV2.INTERNAL_ERROR, message), key=data.hub_id
        )
