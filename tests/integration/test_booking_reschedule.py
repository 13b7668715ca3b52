"""Moving a booking to another slot (issue 16, reschedule) over a real Kafka, on
PostgreSQL and SQLite: confirmed in the new slot and released from the old in one
decision, or refused with the reason and the next slots while the old slot stays; late
after the cutoff; the very same command again gets the same answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from services.booking import store
from services.booking.domain import booking_id_for
from services.booking.service import BookingService
from tests.integration.test_booking_answers import answered
from tests.support.carrier import Carrier, TopicReader, envelope, monday_after
from tests.support.groups import drained
from tests.support.hubs import TEST_HUB

NOW = monday_after(datetime.now(UTC)) + timedelta(hours=5)  # Monday 06:00 Berlin (winter)
SLOT = NOW + timedelta(days=1, hours=3)  # Tuesday 09:00 Berlin, on the hourly grid
HOUR = timedelta(hours=1)
RESCHEDULE = "microhub.booking.reschedule_requested.v1"


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def docks(booking: BookingService, *slots: datetime) -> list[int]:
    async with booking.sessions() as session:
        return [(await store.usage_of(session, TEST_HUB, s)).docks_used for s in slots]


async def stored(booking: BookingService, reference: str) -> store.StoredBooking:
    async with booking.sessions() as session:
        found = await store.find_booking(session, "acme", reference)
    assert found is not None
    return found


async def book(carrier: Carrier, outcomes: TopicReader, reference: str, slot: datetime) -> None:
    command = await carrier.request(reference, hub_id=TEST_HUB, slot_start=slot, time=NOW)
    [answer] = await answered(outcomes, command)
    assert answer["type"] == "microhub.booking.confirmed.v1", answer


async def move(
    carrier: Carrier, outcomes: TopicReader, reference: str, slot: datetime, *, time=NOW, **kw: Any
) -> dict[str, Any]:
    command = await carrier.reschedule(reference, hub_id=TEST_HUB, slot_start=slot, time=time, **kw)
    [answer] = await answered(outcomes, command)
    return answer


async def test_a_move_is_confirmed_in_the_new_slot_and_releases_the_old(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    await book(carrier, outcomes, "m", SLOT)
    answer = await move(carrier, outcomes, "m", SLOT + 2 * HOUR, reason="truck late")
    assert answer["type"] == "microhub.booking.rescheduled.v1"
    data = answer["data"]
    assert data["booking_id"] == booking_id_for("acme", "m")
    assert at(data["previous_slot_start"]) == SLOT and at(data["previous_slot_end"]) == SLOT + HOUR
    assert at(data["slot_start"]) == SLOT + 2 * HOUR and at(data["slot_end"]) == SLOT + 3 * HOUR
    assert data["late"] is False and data["moves"] == 1 and data["reason"] == "truck late"
    assert await docks(booking, SLOT, SLOT + 2 * HOUR) == [0, 1]
    moved = await stored(booking, "m")
    assert moved.status.value == "confirmed" and moved.slot_start == SLOT + 2 * HOUR
    assert moved.moves == 1

    # moved again: counted, and the slot it leaves is the one it had
    again = await move(carrier, outcomes, "m", SLOT + 4 * HOUR, time=NOW + timedelta(minutes=1))
    assert again["data"]["moves"] == 2
    assert at(again["data"]["previous_slot_start"]) == SLOT + 2 * HOUR
    assert await docks(booking, SLOT, SLOT + 2 * HOUR, SLOT + 4 * HOUR) == [0, 0, 1]


async def test_a_move_to_a_full_slot_is_refused_with_the_next_slots_and_the_old_stays(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    for reference in ("a", "b"):  # the test hub has two docks per slot
        await book(carrier, outcomes, reference, SLOT + HOUR)
    await book(carrier, outcomes, "m", SLOT)
    answer = await move(carrier, outcomes, "m", SLOT + HOUR)
    assert answer["type"] == "microhub.booking.reschedule_rejected.v1"
    data = answer["data"]
    assert data["reason"] == "slot_docks_full"
    assert at(data["slot_start"]) == SLOT and at(data["requested_slot_start"]) == SLOT + HOUR
    assert [at(o["start"]) for o in data["next_slots"]] == [SLOT + h * HOUR for h in (2, 3, 4)]
    assert await docks(booking, SLOT, SLOT + HOUR) == [1, 2]
    kept = await stored(booking, "m")
    assert kept.slot_start == SLOT and kept.status.value == "confirmed" and kept.moves == 0

    # off the grid, and a booking that cannot be moved: refused, nothing changes
    off_grid = await move(carrier, outcomes, "m", SLOT + timedelta(minutes=30))
    assert off_grid["data"]["reason"] == "slot_not_on_grid"
    unknown = await move(carrier, outcomes, "nobody", SLOT + 2 * HOUR)
    assert unknown["type"] == "microhub.booking.command_rejected.v1"
    assert unknown["data"]["reason"] == "unknown_booking"
    await carrier.cancel("a", hub_id=TEST_HUB, time=NOW)
    cancelled = await move(carrier, outcomes, "a", SLOT + 2 * HOUR)
    assert cancelled["data"]["reason"] == "booking_not_confirmed"
    assert await docks(booking, SLOT, SLOT + HOUR, SLOT + 2 * HOUR) == [1, 1, 0]


async def test_a_move_after_the_cutoff_is_made_and_late(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    """The test hub's cutoff is 120 minutes before the slot the booking leaves."""
    soon = NOW + 3 * HOUR  # Monday 09:00 Berlin
    await book(carrier, outcomes, "early", soon)
    await book(carrier, outcomes, "late", soon)
    early = await move(carrier, outcomes, "early", SLOT, time=soon - timedelta(minutes=121))
    late = await move(carrier, outcomes, "late", SLOT, time=soon - timedelta(minutes=119))
    assert early["data"]["late"] is False
    assert late["type"] == "microhub.booking.rescheduled.v1" and late["data"]["late"] is True
    assert await docks(booking, soon, SLOT) == [0, 2]


async def test_the_same_move_again_gets_the_same_answer_and_moves_nothing(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    await book(carrier, outcomes, "m", SLOT)
    # never moved, asked to its own slot: confirmed, nothing changes
    stay = await move(carrier, outcomes, "m", SLOT)
    assert stay["type"] == "microhub.booking.rescheduled.v1"
    assert stay["data"]["previous_slot_start"] == stay["data"]["slot_start"]
    assert stay["data"]["moves"] == 0

    document = envelope(
        RESCHEDULE,
        {"carrier_id": "acme", "carrier_reference": "m", "hub_id": TEST_HUB,
         "slot_start": (SLOT + 3 * HOUR).isoformat()},
        time=NOW + timedelta(minutes=1),
        subject=TEST_HUB,
    )  # fmt: skip
    for _ in range(2):  # the very same record twice: the inbox answers it again
        await carrier.send_raw(json.dumps(document).encode(), key=TEST_HUB)
    first, again = await answered(outcomes, document, 2)
    assert first["type"] == again["type"] == "microhub.booking.rescheduled.v1"
    assert again["data"] == first["data"] and first["data"]["moves"] == 1
    # the same move under a new id: the booking has that slot, the same answer again
    twin = await move(carrier, outcomes, "m", SLOT + 3 * HOUR, time=NOW + timedelta(minutes=2))
    assert twin["data"] == first["data"]
    await drained(booking, outcomes)
    assert await docks(booking, SLOT, SLOT + 3 * HOUR) == [0, 1]  # moved once, not thrice
    assert (await stored(booking, "m")).moves == 1


async def test_moves_in_one_batch_see_each_other(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    """A full slot frees a dock by a move and the next command of the same batch takes
    it: the ledger releases and takes in memory, in order, and saves once."""
    for reference in ("a", "b"):
        await book(carrier, outcomes, reference, SLOT)
    await book(carrier, outcomes, "c", SLOT + HOUR)
    sent = [
        await carrier.send(
            RESCHEDULE,
            {"carrier_id": "acme", "carrier_reference": ref, "hub_id": TEST_HUB,
             "slot_start": slot.isoformat()},
            time=NOW + timedelta(minutes=1),
            wait=False,
        )
        for ref, slot in (("a", SLOT + HOUR), ("c", SLOT), ("b", SLOT + HOUR), ("c", SLOT + HOUR))
    ]  # fmt: skip
    answers = [(await answered(outcomes, command))[0] for command in sent]
    kinds = [a["type"].split(".")[2] for a in answers]
    assert kinds == ["rescheduled"] * 3 + ["reschedule_rejected"]
    assert await docks(booking, SLOT, SLOT + HOUR) == [1, 2]
