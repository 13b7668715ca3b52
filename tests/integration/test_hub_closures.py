"""Hub closures through booking's handlers and its database, on PostgreSQL and SQLite
(issue 16): decided in order with the hub's commands; repeated, conflicting and unknown
closures answered; a move into a closed slot refused with slots outside it; a freed slot
in a closed range offered to its waiting list only once the closure is lifted."""

from __future__ import annotations

from datetime import timedelta

from contracts.booking import (
    BookingCancellationRequested,
    BookingRescheduleRequested,
    HubClosureLiftRequested,
    HubClosureRequested,
)
from services.booking.service import BookingService
from tests.integration.test_hub_closures_http import utc
from tests.integration.test_waiting_list import (
    MINUTE,
    NOW,
    SLOT,
    Events,
    booking,
    kinds,
    ref,
    request,
    send,
    status,
)
from tests.support.hubs import TEST_HUB

__all__ = ["booking"]  # the fixture: one dock per slot at TEST_HUB

HOUR = timedelta(hours=1)


def close(closure_id: str, start=SLOT, end=SLOT + 2 * HOUR, reason="holiday", hub=TEST_HUB):
    return HubClosureRequested(
        hub_id=hub, closure_id=closure_id, starts_at=start, ends_at=end, reason=reason,
        requested_by="operator ana",
    )  # fmt: skip


def lift(closure_id: str, reason: str | None = "reopened") -> HubClosureLiftRequested:
    return HubClosureLiftRequested(
        hub_id=TEST_HUB, closure_id=closure_id, reason=reason, requested_by="operator bo"
    )


def answers(events: list[dict]) -> list[tuple[str, str]]:
    return [
        (e["type"].removeprefix("microhub.booking."), e["data"].get("reason", "")) for e in events
    ]


async def test_closures_are_answered_once_each_and_lifting_is_told_with_who_and_why(
    booking: BookingService,
) -> None:
    events = Events(booking)
    await send(booking, close("c1"), NOW)
    [declared] = await events.new()
    assert declared["type"].endswith("hub_closure_declared.v1")
    assert (
        declared["data"]["closed_by"] == "operator ana" and declared["data"]["reason"] == "holiday"
    )
    assert declared["data"]["affected_bookings"] == 0
    await send(booking, close("c1"), NOW + MINUTE)  # the same again: the same answer
    assert [e["data"] for e in await events.new()] == [declared["data"]]
    await send(booking, close("c1", end=SLOT + 5 * HOUR), NOW + MINUTE)
    await send(booking, close("c2", end=SLOT), NOW + MINUTE)
    await send(booking, close("c3", hub="nowhere"), NOW + MINUTE)
    await send(booking, lift("c9"), NOW + MINUTE)
    assert answers(await events.new()) == [
        ("hub_closure_rejected.v1", "closure_conflict"),
        ("hub_closure_rejected.v1", "empty_range"),
        ("hub_closure_rejected.v1", "unknown_hub"),
        ("hub_closure_rejected.v1", "unknown_closure"),
    ]
    await send(booking, lift("c1"), NOW + 2 * MINUTE)
    await send(booking, lift("c1", reason=None), NOW + 3 * MINUTE)  # lifted already
    lifted, again = await events.new()
    assert lifted["type"].endswith("hub_closure_lifted.v1") and again["data"] == lifted["data"]
    assert lifted["data"]["lifted_by"] == "operator bo" and lifted["data"]["reason"] == "reopened"


async def test_bookings_in_a_closed_range_are_told_and_moves_into_it_refused(
    booking: BookingService,
) -> None:
    events = Events(booking)
    await send(booking, request("in", wait=False), NOW)
    await send(booking, request("later", wait=False, slot=SLOT + 3 * HOUR), NOW)
    await events.new()
    await send(booking, close("c1"), NOW + MINUTE)
    declared, notice = await events.new()
    assert declared["data"]["affected_bookings"] == 1
    assert kinds([notice]) == [("closure_affected.v1", "in")]
    offers = [utc(o["start"]) for o in notice["data"]["next_slots"]]
    assert offers and all(o >= SLOT + 2 * HOUR for o in offers)
    assert SLOT + 3 * HOUR not in offers  # full (one dock, booked)
    assert await status(booking, "in") == "confirmed"  # it stays until the carrier moves it

    move = ref(BookingRescheduleRequested, "later", slot_start=SLOT + HOUR)
    await send(booking, move, NOW + 2 * MINUTE)
    [refused] = await events.new()
    assert refused["type"].endswith("reschedule_rejected.v1")
    assert refused["data"]["reason"] == "hub_closed"
    assert all(utc(o["start"]) >= SLOT + 2 * HOUR for o in refused["data"]["next_slots"])


async def test_a_slot_freed_while_closed_is_offered_to_its_waiting_list_once_lifted(
    booking: BookingService,
) -> None:
    events = Events(booking)
    await send(booking, request("a"), NOW)
    await send(booking, request("b"), NOW + MINUTE)  # waits
    await send(booking, close("c1"), NOW + 2 * MINUTE)
    await send(booking, ref(BookingCancellationRequested, "a"), NOW + 3 * MINUTE)
    assert [k for k, _ in kinds((await events.new())[-1:])] == ["cancelled.v1"]  # no offer
    assert await status(booking, "b") == "waitlisted"
    await send(booking, lift("c1"), NOW + 4 * MINUTE)
    lifted, offered = await events.new()
    assert lifted["type"].endswith("hub_closure_lifted.v1")
    assert kinds([offered]) == [("waitlist_offered.v1", "b")]
