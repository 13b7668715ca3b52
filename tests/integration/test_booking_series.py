"""Standing bookings (issue 16) over a real Kafka, on PostgreSQL and SQLite: a series
books its occurrences within the horizon, each decided like a request (one refused for
capacity, with the reason and offers); the moving horizon books the next one, through a
later command's event time or the wall-clock sweep; one occurrence is cancelled like any
booking, the rest with one command; a bad rule is refused with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from services.booking import store
from services.booking.domain import booking_id_for
from services.booking.service import BookingService
from tests.integration.test_booking_answers import answered
from tests.support.carrier import Carrier, TopicReader, consignment, monday_after
from tests.support.hubs import TEST_HUB

BERLIN = ZoneInfo("Europe/Berlin")
NOW = monday_after(datetime.now(UTC)) + timedelta(hours=5)  # about Monday 06:00 Berlin
MONDAY = NOW.astimezone(BERLIN).date()
DAY = timedelta(days=1)
SERIES = "microhub.booking.series_requested.v1"
SERIES_CANCEL = "microhub.booking.series_cancel_requested.v1"
WEEKLY = "FREQ=WEEKLY;BYDAY=MO,WE,FR"


def local(day_offset: int, hour: int = 7) -> datetime:
    """The slot at ``hour`` Berlin wall time, ``day_offset`` days after the Monday (UTC)."""
    day = MONDAY + timedelta(days=day_offset)
    return datetime(day.year, day.month, day.day, hour, tzinfo=BERLIN).astimezone(UTC)


def reference(day_offset: int, series: str = "weekly") -> str:
    return f"{series}:{(MONDAY + timedelta(days=day_offset)).strftime('%Y%m%d')}T0700"


def series_data(ref: str = "weekly", rule: str = WEEKLY, **kw: Any) -> dict[str, Any]:
    return {
        "carrier_id": "acme",
        "carrier_reference": ref,
        "hub_id": TEST_HUB,
        "rrule": rule,
        "dtstart": f"{MONDAY.isoformat()}T07:00:00",
        "consignment": consignment(),
    } | kw


async def docks(booking: BookingService, *slots: datetime) -> list[int]:
    async with booking.sessions() as session:
        return [(await store.usage_of(session, TEST_HUB, s)).docks_used for s in slots]


async def test_a_series_is_booked_extended_and_cancelled(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    for ref in ("a", "b"):  # Wednesday 07:00 is full (the test hub has two docks)
        command = await carrier.request(ref, hub_id=TEST_HUB, slot_start=local(2), time=NOW)
        await answered(outcomes, command)

    command = await carrier.send(SERIES, series_data(), time=NOW)
    # Mon, Wed, Fri of two weeks are within the 14 days; the third Monday is not (yet)
    answers = await answered(outcomes, command, 7)
    [accepted] = [a for a in answers if a["type"].endswith("series_accepted.v1")]
    occurrences = accepted["data"]["occurrences"]
    assert [o["carrier_reference"] for o in occurrences] == [
        reference(d) for d in (0, 2, 4, 7, 9, 11)
    ]
    assert [datetime.fromisoformat(o["slot_start"]) for o in occurrences] == [
        local(d) for d in (0, 2, 4, 7, 9, 11)
    ]
    assert [o["status"] for o in occurrences] == ["confirmed", "rejected"] + ["confirmed"] * 4
    assert occurrences[1]["reason"] == "slot_docks_full"
    by_ref = {a["data"].get("carrier_reference"): a for a in answers}
    refused = by_ref[reference(2)]
    assert refused["type"] == "microhub.booking.rejected.v1"
    assert refused["data"]["reason"] == "slot_docks_full" and refused["data"]["next_slots"]
    confirmed = by_ref[reference(7)]
    assert confirmed["type"] == "microhub.booking.confirmed.v1"
    assert confirmed["data"]["booking_id"] == booking_id_for("acme", reference(7))
    assert await docks(booking, local(0), local(2), local(4), local(14)) == [1, 2, 1, 0]

    # a day later (any command's event time at the hub): the third Monday is in reach
    later = NOW + DAY + timedelta(hours=1)
    nudge = await carrier.request("c", hub_id=TEST_HUB, slot_start=local(3, 12), time=later)
    await answered(outcomes, nudge)
    await outcomes.wait_for(
        lambda r: any(e["data"].get("carrier_reference") == reference(14) for e in r.events),
        what="the third Monday booked",
    )
    [third] = [e for e in outcomes.events if e["data"].get("carrier_reference") == reference(14)]
    assert third["type"] == "microhub.booking.confirmed.v1"
    assert "causationid" not in third  # it answers no command
    assert await docks(booking, local(14), local(16)) == [1, 0]

    # one occurrence cancelled like any booking
    cancel = await carrier.send(
        "microhub.booking.cancellation_requested.v1",
        {"carrier_id": "acme", "carrier_reference": reference(4), "hub_id": TEST_HUB},
        time=later,
    )
    [one] = await answered(outcomes, cancel)
    assert one["type"] == "microhub.booking.cancelled.v1"

    # the rest: every later confirmed occurrence, and none is booked any more
    rest = await carrier.send(
        SERIES_CANCEL,
        {"carrier_id": "acme", "carrier_reference": "weekly", "hub_id": TEST_HUB,
         "reason": "contract ended"},
        time=later,
    )  # fmt: skip
    answers = await answered(outcomes, rest, 5)
    [summary] = [a for a in answers if a["type"].endswith("series_cancelled.v1")]
    assert summary["data"]["cancelled"] == [
        booking_id_for("acme", reference(d)) for d in (7, 9, 11, 14)
    ]
    assert sorted(a["data"]["carrier_reference"] for a in answers if a is not summary) == sorted(
        reference(d) for d in (7, 9, 11, 14)
    )
    assert await docks(booking, local(0), local(4), local(7), local(14)) == [1, 0, 0, 0]

    # a week on, nothing more is booked for the cancelled series
    week_on = NOW + 7 * DAY
    last = await carrier.request("d", hub_id=TEST_HUB, slot_start=local(8, 12), time=week_on)
    await answered(outcomes, last)
    assert not [e for e in outcomes.events if e["data"].get("carrier_reference") in
                (reference(16), reference(18), reference(21))]  # fmt: skip
    async with booking.sessions() as session:
        kept = await store.find_booking(session, "acme", reference(0))
    # not cancelled with the rest (its slot had begun): a no-show by now, no check-in
    assert kept is not None and kept.status.value == "no_show"

    # after the retention, the cancelled series keeps no delivery address nor free text
    retention = timedelta(days=booking.settings.personal_data_retention_days)
    purged_at = later + retention + DAY
    counts = await booking.purge_personal_data(purged_at)
    assert counts["series (consignment, cancellation)"] == 1
    async with booking.sessions() as session:
        row = (await session.execute(select(store.series))).one()
    sent = consignment()["stops"]
    assert (
        [s["location"] for s in row.consignment["stops"]]
        == [{k: round(v, 2) for k, v in s["location"].items()} for s in sent]
        != [s["location"] for s in sent]
    )
    assert row.cancellation["data"]["reason"] is None and row.purged_at == purged_at
    assert (await booking.purge_personal_data(purged_at))["series (consignment, cancellation)"] == 0


async def test_the_wall_clock_sweep_extends_a_quiet_hubs_series(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    command = await carrier.send(SERIES, series_data("quiet", "FREQ=DAILY"), time=NOW)
    answers = await answered(outcomes, command, 15)  # 14 days ahead, and the series
    assert len([a for a in answers if a["type"].endswith("confirmed.v1")]) == 14
    await booking.sweep_no_shows(NOW + 2 * DAY)  # the timer's call, at a later wall clock
    async with booking.sessions() as session:
        extended = [
            await store.find_booking(session, "acme", reference(d, "quiet")) for d in (14, 15, 16)
        ]
    assert [b.status.value if b else None for b in extended] == ["confirmed", "confirmed", None]
    # the sweep again at the same time: nothing booked twice
    await booking.sweep_no_shows(NOW + 2 * DAY)
    assert await docks(booking, local(14), local(15)) == [1, 1]


async def test_series_refusals_and_resends(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    bad = await carrier.send(SERIES, series_data("bad", "FREQ=HOURLY"), time=NOW)
    [refused] = await answered(outcomes, bad)
    assert refused["type"] == "microhub.booking.series_rejected.v1"
    assert refused["data"]["reason"] == "rrule_too_frequent" and refused["data"]["message"]
    unreadable = await carrier.send(SERIES, series_data("bad", "FREQ=WEEKLY;BYDAY=XX"), time=NOW)
    [refused] = await answered(outcomes, unreadable)
    assert refused["data"]["reason"] == "invalid_rrule"
    nowhere = await carrier.send(SERIES, series_data("bad", hub_id="atlantis"), time=NOW)
    [refused] = await answered(outcomes, nowhere)
    assert refused["data"]["reason"] == "unknown_hub"
    unknown = await carrier.send(
        SERIES_CANCEL,
        {"carrier_id": "acme", "carrier_reference": "never", "hub_id": TEST_HUB},
        time=NOW,
    )
    [refused] = await answered(outcomes, unknown)
    assert refused["data"]["reason"] == "unknown_series"

    data = series_data("twice", "FREQ=WEEKLY;BYDAY=TU")
    first = await answered(outcomes, await carrier.send(SERIES, data, time=NOW), 3)
    # the same series under a new id: the same answer, nothing booked again
    again = await answered(outcomes, await carrier.send(SERIES, data, time=NOW + DAY), 1)
    [accepted] = [a for a in first if a["type"].endswith("series_accepted.v1")]
    assert again[0]["data"] == accepted["data"]
    other = await carrier.send(SERIES, data | {"rrule": "FREQ=WEEKLY;BYDAY=TH"}, time=NOW)
    [conflict] = await answered(outcomes, other)
    assert conflict["data"]["reason"] == "idempotency_conflict"
    assert await docks(booking, local(1), local(8), local(3)) == [1, 1, 0]
