"""The waiting list's rules (issue 16): who is offered freed capacity, for how long, and
when a waiting request ends. Pure: no I/O, no clock; every rule takes the event time.

Fairness: the requests waiting for one slot are served first come, first served by the
time of their request (then the order they were decided in: ``seq``); one that does not
fit the freed capacity is skipped, not dropped, and keeps its place for the next time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from contracts.booking import RejectionReason, WaitlistEndReason
from services.booking.domain import HubConfig, Rejection, SlotUsage, fits
from services.booking.slot_grid import closure_of

# a request may wait only for room; every other rejection is the request's own problem
WAITABLE = frozenset({RejectionReason.DOCKS_FULL, RejectionReason.VOLUME_FULL})


def may_wait(rejection: Rejection) -> bool:
    return rejection.reason in WAITABLE


@dataclass(frozen=True)
class WaitingEntry:
    booking_id: str
    hub_id: str
    slot_start: datetime
    volume_l: int
    queued_at: datetime  # the request's event time
    seq: int  # the order it was decided in among the hub's entries
    offered_until: datetime | None = None  # holding capacity until then (event time)

    @property
    def place(self) -> tuple[datetime, int, str]:
        return (self.queued_at, self.seq, self.booking_id)

    @property
    def offered(self) -> bool:
        return self.offered_until is not None


def line(entries: Iterable[WaitingEntry], hub_id: str, slot: datetime) -> list[WaitingEntry]:
    """The requests still waiting (no offer) for one slot, first in line first."""
    return sorted(
        (e for e in entries if e.hub_id == hub_id and e.slot_start == slot and not e.offered),
        key=lambda e: e.place,
    )


def position(entries: Iterable[WaitingEntry], entry: WaitingEntry) -> int:
    """1-based place of ``entry`` among those waiting for its slot."""
    return line(entries, entry.hub_id, entry.slot_start).index(entry) + 1


def offer_expiry(hub: HubConfig, slot: datetime, now: datetime) -> datetime:
    """An offer holds the slot for the hub's ``waitlist_offer_minutes``, never past the
    slot's start (a slot that began cannot be booked any more)."""
    return min(now + timedelta(minutes=hub.waitlist_offer_minutes), slot)


def offers(
    hub: HubConfig,
    slot: datetime,
    usage: SlotUsage,
    entries: Iterable[WaitingEntry],
    *,
    now: datetime,
) -> list[WaitingEntry]:
    """The waiting requests for ``slot`` to offer it to at ``now``, given what is held of
    it (``usage``, held offers included): first in line first, each taking its dock and
    volume, skipping those that do not fit what is left. They come back with their
    offer's expiry set. None once the slot began."""
    if slot <= now or closure_of(hub, slot) is not None:  # lifting it offers it again
        return []
    until = offer_expiry(hub, slot, now)
    chosen = []
    used = usage
    for entry in line(entries, hub.id, slot):
        if fits(hub, used, entry.volume_l) is None:
            used = SlotUsage(used.docks_used + 1, used.volume_used_l + entry.volume_l)
            chosen.append(replace(entry, offered_until=until))
    return chosen


def ended(
    entries: Iterable[WaitingEntry], hub_id: str, now: datetime
) -> list[tuple[WaitingEntry, WaitlistEndReason]]:
    """The hub's entries that end at ``now`` without a booking: offers not taken by their
    expiry, and requests still waiting when their slot began; in the order it happened."""
    due = []
    for e in entries:
        if e.hub_id != hub_id:
            continue
        if e.offered_until is not None and e.offered_until <= now:
            due.append((e.offered_until, e, WaitlistEndReason.OFFER_EXPIRED))
        elif e.slot_start <= now:
            due.append((e.slot_start, e, WaitlistEndReason.SLOT_PASSED))
    due.sort(key=lambda d: (d[0], d[1].place))
    return [(e, why) for _, e, why in due]
