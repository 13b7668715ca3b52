"""Standing bookings (issue 16): a carrier books a recurring slot once, as an iCalendar
RRULE, and the booking service books each occurrence within the hub's booking horizon as
a booking of its own, extending the series as the horizon moves.

Commands go to ``microhub.booking.commands.v1`` (key: hub id); the events answering them
to ``microhub.booking.events.v1``. Each occurrence is an ordinary booking: its reference
is the series reference, ``:`` and its local start (``YYYYMMDDTHHMM``, the hub's wall
time), so its booking id is known in advance and a replay never books it twice; it is
cancelled, moved and checked in like any other booking.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, NaiveDatetime

from contracts.booking.commands import Consignment
from contracts.common import Identifier
from contracts.envelope import Payload, message
from contracts.topics import BOOKING_COMMANDS, BOOKING_EVENTS

SERIES_ID_NAMESPACE = uuid.UUID("5b7f8a1e-2d0c-4f5e-9a61-3c2e8d4b9f07")
# the occurrence suffix ``:YYYYMMDDTHHMM`` (14 characters) must fit in an Identifier (64)
MAX_SERIES_REFERENCE = 50

SeriesReference = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_SERIES_REFERENCE,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$",
        description="The carrier's reference of the series (no ':': it separates the "
        "occurrence's local start in the occurrences' references).",
    ),
]


def series_id_for(carrier_id: str, carrier_reference: str) -> str:
    """The series' id, derived from the carrier's idempotency key (like a booking's)."""
    return str(uuid.uuid5(SERIES_ID_NAMESPACE, f"{carrier_id}\x1f{carrier_reference}"))


class SeriesRejectionReason(StrEnum):
    INVALID_RRULE = "invalid_rrule"
    RRULE_TOO_FREQUENT = "rrule_too_frequent"
    NO_OCCURRENCES = "series_without_occurrences"
    UNKNOWN_HUB = "unknown_hub"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    UNKNOWN_SERIES = "unknown_series"
    WRONG_HUB = "wrong_hub"


@message("microhub.booking.series_requested.v1", BOOKING_COMMANDS.name)
class SeriesRequested(Payload):
    """Book the slot of ``consignment`` at ``hub_id`` on every occurrence of ``rrule``
    starting at ``dtstart``. Answered with ``microhub.booking.series_accepted.v1`` plus
    one ``confirmed.v1`` or ``rejected.v1`` per occurrence booked now (within the hub's
    booking horizon), or with ``microhub.booking.series_rejected.v1`` (and nothing
    booked). Later occurrences are booked as the horizon reaches them."""

    carrier_id: Identifier
    carrier_reference: SeriesReference
    hub_id: Identifier
    rrule: str = Field(
        min_length=1,
        max_length=500,
        description="An RFC 5545 RRULE value without the 'RRULE:' prefix, e.g. "
        "'FREQ=WEEKLY;BYDAY=MO,WE,FR'. FREQ DAILY, WEEKLY, MONTHLY or YEARLY; the time of "
        "day is dtstart's (BYHOUR, BYMINUTE, BYSECOND are refused).",
        examples=["FREQ=WEEKLY;BYDAY=MO,WE,FR", "FREQ=DAILY;COUNT=10"],
    )
    dtstart: NaiveDatetime = Field(
        description="The first occurrence as the hub's local wall time, without an offset "
        "(e.g. 2026-12-07T07:00:00). Every occurrence keeps this wall time across DST "
        "changes (README, Standing bookings)."
    )
    consignment: Consignment


@message("microhub.booking.series_cancel_requested.v1", BOOKING_COMMANDS.name)
class SeriesCancelRequested(Payload):
    """Cancel the rest of a series: every confirmed occurrence whose slot has not started
    yet is cancelled (as a ``cancellation_requested.v1`` would, ``late`` after the
    cutoff) and no further occurrence is booked. One occurrence alone is cancelled with
    the ordinary ``cancellation_requested.v1`` and its own reference."""

    carrier_id: Identifier
    carrier_reference: SeriesReference
    hub_id: Identifier
    reason: str | None = Field(default=None, max_length=500)


class SeriesOccurrence(Payload):
    booking_id: str
    carrier_reference: Identifier = Field(description="The occurrence's own reference.")
    slot_start: AwareDatetime
    local_start: NaiveDatetime = Field(description="slot_start as the hub's wall time")
    status: str = Field(description="confirmed, rejected, … (the booking's status)")
    reason: str | None = Field(default=None, description="why it was rejected")


class _SeriesEvent(Payload):
    series_id: str
    carrier_id: Identifier
    carrier_reference: SeriesReference
    hub_id: Identifier


@message("microhub.booking.series_accepted.v1", BOOKING_EVENTS.name)
class SeriesAccepted(_SeriesEvent):
    """The series stands. ``occurrences``: those decided by this command (within the
    horizon), each also answered by its own ``confirmed.v1`` or ``rejected.v1``;
    ``booked_until``: occurrences up to this instant are decided."""

    rrule: str
    dtstart: NaiveDatetime
    timezone: str
    booked_until: AwareDatetime
    occurrences: list[SeriesOccurrence]


@message("microhub.booking.series_rejected.v1", BOOKING_EVENTS.name)
class SeriesRejected(_SeriesEvent):
    """A series command refused: nothing was booked or cancelled."""

    command_type: str
    reason: SeriesRejectionReason
    message: str


@message("microhub.booking.series_cancelled.v1", BOOKING_EVENTS.name)
class SeriesCancelled(_SeriesEvent):
    """The rest of the series is cancelled: ``cancelled`` lists the occurrences cancelled
    by this command (each also answered by its own ``cancelled.v1``); none is booked
    any more."""

    cancelled: list[str] = Field(description="booking ids")
    reason: str | None = None
