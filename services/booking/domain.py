"""Booking rules: capacity, what a request or a move must pass, and the booking
lifecycle. Where a hub's slots are (its slot grid) is slot_grid.py's.

Pure: no I/O, no clock. Every decision takes the event time (``now``) explicitly, so a
replay or a simulated month decides exactly as the live run did.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from contracts.booking import BookingRequested, Consignment, RejectionReason
from contracts.booking.commands import booking_id_for
from contracts.booking.events import CommandRejectionReason, CommandRejectionReasonV2
from contracts.hubs import (
    MAX_BOOKING_HORIZON_DAYS,
    WEEKDAYS,
    City,
    HubConfig,
    OpeningInterval,
    litres,
)
from services.booking.slot_grid import grid_problem, slots_between

# the catalogue, and the booking id (part of the commands' contract)
__all__ = ["WEEKDAYS", "City", "HubConfig", "OpeningInterval", "booking_id_for", "litres"]

# ----------------------------------------------------------------------- capacity ------


@dataclass(frozen=True)
class SlotUsage:
    docks_used: int = 0
    volume_used_l: int = 0


@dataclass(frozen=True)
class FreeSlot:
    start: datetime
    end: datetime
    free_docks: int
    free_volume_l: int


def free_capacity(hub: HubConfig, slot: datetime, usage: SlotUsage) -> FreeSlot:
    return FreeSlot(
        start=slot,
        end=slot + hub.slot_length,
        free_docks=max(hub.docks_per_slot - usage.docks_used, 0),
        free_volume_l=max(hub.volume_per_slot_l - usage.volume_used_l, 0),
    )


def fits(hub: HubConfig, usage: SlotUsage, volume_l: int) -> RejectionReason | None:
    if usage.docks_used + 1 > hub.docks_per_slot:
        return RejectionReason.DOCKS_FULL
    if usage.volume_used_l + volume_l > hub.volume_per_slot_l:
        return RejectionReason.VOLUME_FULL
    return None


def next_fitting_slots(
    hub: HubConfig,
    *,
    after: datetime,
    now: datetime,
    volume_l: int,
    usage: Mapping[datetime, SlotUsage],
    limit: int = 3,
    skip: datetime | None = None,
) -> list[FreeSlot]:
    """Up to ``limit`` bookable slots after ``after`` (and after ``now``) that would take
    a consignment of ``volume_l`` litres, within the booking horizon; never ``skip`` (the
    slot a booking to be moved holds already)."""
    if volume_l > hub.volume_per_slot_l:
        return []
    horizon_end = now + timedelta(days=hub.booking_horizon_days)
    found: list[FreeSlot] = []
    for slot in slots_between(hub, max(after, now), horizon_end + timedelta(microseconds=1)):
        if slot <= now or slot <= after or slot == skip:
            continue
        used = usage.get(slot, SlotUsage())
        if fits(hub, used, volume_l) is None:
            found.append(free_capacity(hub, slot, used))
            if len(found) == limit:
                break
    return found


# ---------------------------------------------------------------------- decisions ------


class BookingStatus(StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    CHECKED_IN = "checked_in"
    NO_SHOW = "no_show"
    # a request for a full slot on its waiting list (waiting_list.py), holding an offer,
    # or ended without a booking (declined, offer expired, slot passed)
    WAITLISTED = "waitlisted"
    OFFERED = "offered"
    WAITLIST_ENDED = "waitlist_ended"


def fingerprint(
    command: BookingRequested,
    document: dict[str, Any] | None = None,
    slot_start: datetime | None = None,
) -> str:
    """What 'the same content' means for a resent request: its canonical JSON, with the
    slot as a UTC instant (the same time written with another offset is the same slot).
    ``document``: the command's ``model_dump(mode="json")``, and ``slot_start`` its slot
    in UTC, when the caller has them."""
    document = dict(document) if document is not None else command.model_dump(mode="json")
    slot = slot_start if slot_start is not None else command.slot_start.astimezone(UTC)
    document["slot_start"] = slot.isoformat()
    return hashlib.sha256(_canonical_json(document)).hexdigest()


# numbers orjson and json.dumps write differently: with an exponent (orjson: 1e16,
# json.dumps: 1e+16) or below 1e-4 (orjson: 0.00001, json.dumps: 1e-05)
# (two expressions: one with both alternatives cost ~15 µs a document, these ~3 µs).
# _EXPONENT starts with a class, so the engine tries it at every byte (3.3 µs for a
# 400-byte request); _AFTER_E starts with a literal, which it finds by a fast scan (0.6
# µs), and a document without it has no exponent either: the slow search runs only then
_EXPONENT = re.compile(rb"[0-9]e[-+0-9]")
_AFTER_E = re.compile(rb"e[-+0-9]")
_TINY = re.compile(rb"[^0-9]0\.0000")


def _canonical_json(document: dict[str, Any]) -> bytes:
    """``json.dumps(document, sort_keys=True, separators=(",", ":"))``, byte for byte:
    fingerprints are stored, so what they are of never changes. orjson writes the same
    ~10x faster, except non-ASCII text and DEL (json.dumps escapes them), numbers with exponents
    and integers past 64 bits: those documents (rare, and the check is cheap and errs
    towards the slow path) are written by json.dumps."""
    try:
        canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        canonical = b"\xff"  # not ASCII: the slow path
    # json.dumps also escapes DEL (0x7f), which orjson writes as it is
    if (
        canonical.isascii()
        and b"\x7f" not in canonical
        and (_AFTER_E.search(canonical) is None or _EXPONENT.search(canonical) is None)
        and (b"0.0000" not in canonical or _TINY.search(canonical) is None)
    ):
        return canonical
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Rejection:
    reason: RejectionReason
    message: str


def check_consignment(consignment: Consignment) -> tuple[CommandRejectionReasonV2, str] | None:
    """The rules of a consignment its JSON Schema cannot express: the stops carry
    ``parcel_count`` parcels, and no two stops share a ``stop_id``. None when it keeps
    both (checked before anything is decided; a command that breaks one is refused)."""
    total = sum(stop.parcels for stop in consignment.stops)
    if total != consignment.parcel_count:
        return (
            CommandRejectionReasonV2.PARCEL_COUNT_MISMATCH,
            f"the stops carry {total} parcels but parcel_count is {consignment.parcel_count}",
        )
    ids = [stop.stop_id for stop in consignment.stops]
    if len(set(ids)) == len(ids):  # the usual case, without counting (a Counter: ~2 µs)
        return None
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if repeated:
        shown = ", ".join(repr(i) for i in repeated[:5]) + (" …" if len(repeated) > 5 else "")
        return (
            CommandRejectionReasonV2.DUPLICATE_STOP_ID,
            f"stop_id values must be unique within a consignment; repeated: {shown}",
        )
    return None


# A slot this far from the request is answered before any date arithmetic, which fails at
# the ends of the calendar (year 1, year 9999): beyond every hub's horizon, or past.
_FAR_AHEAD = timedelta(days=MAX_BOOKING_HORIZON_DAYS + 1)
_FAR_BEHIND = timedelta(days=1)


def check_slot_distance(command: Any, *, now: datetime) -> Rejection | None:
    """A slot (``command.slot_start``: a request's or a reschedule's) so far ahead that no
    hub's horizon reaches it, or a day or more before the command, whatever the hub (its
    grid need not be looked at)."""
    slot = command.slot_start
    if slot - now > _FAR_AHEAD:  # aware datetimes: their difference never overflows
        return Rejection(
            RejectionReason.BEYOND_HORIZON,
            f"slot {slot.isoformat()} is more than {MAX_BOOKING_HORIZON_DAYS} days after the "
            f"request ({now.isoformat()}): beyond every hub's booking horizon",
        )
    if now - slot > _FAR_BEHIND:
        return Rejection(
            RejectionReason.IN_THE_PAST,
            f"slot {slot.isoformat()} is not in the future (request time {now.isoformat()})",
        )
    return None


def time_is_usable(moment: datetime) -> bool:
    """Can the decisions compute with this event time (a year of margin to the ends of
    the calendar)? A sender's clock that says year 9999 is answered as clock skew."""
    margin = timedelta(days=MAX_BOOKING_HORIZON_DAYS + 2)
    try:
        utc = moment.astimezone(UTC)
        return utc - margin < utc + margin
    except OverflowError:
        return False


def check_request(
    hub: HubConfig | None,
    command: BookingRequested,
    *,
    now: datetime,
    usage: SlotUsage,
) -> Rejection | None:
    """All the rules a new booking request must pass, in the order a carrier would want
    to hear about them. None means: confirm."""
    if hub is None:
        return Rejection(RejectionReason.UNKNOWN_HUB, f"there is no hub {command.hub_id!r}")
    return check_slot(hub, command.slot_start, command.consignment.volume_m3, now=now, usage=usage)


def check_slot(
    hub: HubConfig, slot: datetime, volume_m3: float, *, now: datetime, usage: SlotUsage
) -> Rejection | None:
    """May a consignment of ``volume_m3`` take ``slot`` of ``hub`` at ``now``, the slot's
    ``usage`` being what others hold of it? The rules of a request and of a reschedule's
    new slot alike, in the order a carrier would want to hear about them."""
    problem = grid_problem(hub, slot)
    if problem is not None:
        return Rejection(*problem)
    if slot <= now:
        return Rejection(
            RejectionReason.IN_THE_PAST,
            f"slot {slot.isoformat()} is not in the future (request time {now.isoformat()})",
        )
    horizon_end = now + timedelta(days=hub.booking_horizon_days)
    if slot > horizon_end:
        return Rejection(
            RejectionReason.BEYOND_HORIZON,
            f"hub {hub.id} takes bookings at most {hub.booking_horizon_days} days ahead "
            f"(until {horizon_end.isoformat()})",
        )
    volume_l = litres(volume_m3)
    if volume_l > hub.volume_per_slot_l:
        return Rejection(
            RejectionReason.CONSIGNMENT_TOO_LARGE,
            f"the consignment ({volume_m3} m³) is larger than a whole slot "
            f"of hub {hub.id} ({hub.volume_per_slot_m3} m³)",
        )
    reason = fits(hub, usage, volume_l)
    if reason is RejectionReason.DOCKS_FULL:
        return Rejection(reason, f"all {hub.docks_per_slot} docks of this slot are booked")
    if reason is RejectionReason.VOLUME_FULL:
        free = (hub.volume_per_slot_l - usage.volume_used_l) / 1000
        return Rejection(
            reason,
            f"the slot has {free:.3f} m³ left, the consignment needs {volume_m3} m³",
        )
    return None


def cancellation_is_late(hub: HubConfig | None, slot_start: datetime, now: datetime) -> bool:
    cutoff = hub.cancellation_cutoff_minutes if hub is not None else 0
    return now > slot_start - timedelta(minutes=cutoff)


@dataclass(frozen=True)
class BookingState:
    """The part of a stored booking the lifecycle rules look at."""

    status: BookingStatus
    hub_id: str
    slot_start: datetime
    slot_end: datetime


def check_cancellation(
    booking: BookingState | None, *, hub_id: str
) -> tuple[CommandRejectionReason, str] | None:
    if booking is None or booking.status is BookingStatus.REJECTED:
        return CommandRejectionReason.UNKNOWN_BOOKING, "no confirmed booking with this reference"
    if booking.hub_id != hub_id:
        return CommandRejectionReason.WRONG_HUB, f"the booking is at hub {booking.hub_id}"
    if booking.status not in {BookingStatus.CONFIRMED, BookingStatus.CANCELLED}:
        return (
            CommandRejectionReason.NOT_CONFIRMED,
            f"a booking that is {booking.status.value} can no longer be cancelled",
        )
    return None


def check_reschedule(
    booking: BookingState | None, *, hub_id: str
) -> tuple[CommandRejectionReason, str] | None:
    """May this booking be moved at all (whatever the new slot)? Only a confirmed booking,
    at the hub the command names: a cancelled, checked-in or no-show booking keeps its
    slot. None when it may (the new slot is :func:`check_slot`'s)."""
    if booking is None or booking.status is BookingStatus.REJECTED:
        return CommandRejectionReason.UNKNOWN_BOOKING, "no confirmed booking with this reference"
    if booking.hub_id != hub_id:
        return (
            CommandRejectionReason.WRONG_HUB,
            f"the booking is at hub {booking.hub_id}; a booking moves within its hub",
        )
    if booking.status is not BookingStatus.CONFIRMED:
        return (
            CommandRejectionReason.NOT_CONFIRMED,
            f"a booking that is {booking.status.value} can no longer be rescheduled",
        )
    return None


def reschedule_is_late(hub: HubConfig | None, previous_slot: datetime, now: datetime) -> bool:
    """A move is late when a cancellation of the booking would be: after the hub's
    cancellation cutoff before the slot it leaves (that slot's capacity is freed too late
    for another carrier to plan with). Late moves are made and flagged, not refused."""
    return cancellation_is_late(hub, previous_slot, now)


def check_check_in(
    booking: BookingState | None, hub: HubConfig | None, *, hub_id: str, now: datetime
) -> tuple[CommandRejectionReason, str] | None:
    if booking is None or booking.status is BookingStatus.REJECTED:
        return CommandRejectionReason.UNKNOWN_BOOKING, "no confirmed booking with this reference"
    if booking.hub_id != hub_id:
        return CommandRejectionReason.WRONG_HUB, f"the booking is at hub {booking.hub_id}"
    if booking.status not in {BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN}:
        return (
            CommandRejectionReason.NOT_CONFIRMED,
            f"a booking that is {booking.status.value} cannot be checked in",
        )
    early = timedelta(minutes=hub.check_in_early_minutes if hub is not None else 120)
    if booking.status is BookingStatus.CONFIRMED and now < booking.slot_start - early:
        return (
            CommandRejectionReason.TOO_EARLY,
            f"check-in opens {early} before the slot ({booking.slot_start.isoformat()})",
        )
    return None


def is_no_show(booking: BookingState, *, now: datetime, grace: timedelta) -> bool:
    return booking.status is BookingStatus.CONFIRMED and now > booking.slot_end + grace
