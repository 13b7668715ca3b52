"""A carrier's system talks to the booking service over a real Kafka wire protocol, with
plain aiokafka and raw JSON; the service persists in PostgreSQL and SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from services.booking import store
from services.booking.service import BookingService
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader, monday_after
from tests.support.groups import drained
from tests.support.hubs import TEST_HUB

NOW = monday_after(datetime.now(UTC)) + timedelta(hours=5)  # Monday 06:00 Berlin (winter)
SLOT = NOW + timedelta(days=1, hours=3)  # Tuesday, on the hourly grid from 06:00 local


def _local_grid(moment: datetime) -> datetime:
    """Snap to the hub's hourly grid (it starts on the hour in Europe/Berlin)."""
    return moment.replace(minute=0, second=0, microsecond=0)


async def test_request_is_confirmed_and_resend_gets_the_same_outcome(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    slot = _local_grid(SLOT)
    await carrier.request("ref-1", hub_id=TEST_HUB, slot_start=slot, time=NOW)
    [confirmed] = await outcomes.wait_count(1, suffix="confirmed.v1")
    assert confirmed["data"]["carrier_reference"] == "ref-1"
    assert confirmed["subject"] == TEST_HUB
    assert datetime.fromisoformat(confirmed["data"]["slot_start"]) == slot
    assert confirmed["data"]["hub"]["city_id"] == "testcity"

    # the carrier resends the very same command (a new envelope id, same content)
    await carrier.request(
        "ref-1", hub_id=TEST_HUB, slot_start=slot, time=NOW + timedelta(seconds=5)
    )
    both = await outcomes.wait_count(2, suffix="confirmed.v1")
    assert both[1]["data"] == both[0]["data"]

    # same reference, different content: a conflict, and the booking is untouched
    await carrier.request("ref-1", hub_id=TEST_HUB, slot_start=slot + timedelta(hours=1), time=NOW)
    [conflict] = await outcomes.wait_count(1, suffix="rejected.v1")
    assert conflict["data"]["reason"] == "idempotency_conflict"
    async with booking.sessions() as session:
        stored = await store.find_booking(session, "acme", "ref-1")
        usage = await store.usage_of(session, TEST_HUB, slot)
    assert stored.status.value == "confirmed" and stored.slot_start == slot
    assert usage.docks_used == 1


async def test_full_slot_is_rejected_with_next_slots_and_cancellation_frees_it(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    slot = _local_grid(SLOT)
    for ref in ("a", "b"):  # the test hub has two docks per slot
        await carrier.request(ref, hub_id=TEST_HUB, slot_start=slot, time=NOW)
    await carrier.request("c", hub_id=TEST_HUB, slot_start=slot, time=NOW)
    [rejected] = await outcomes.wait_count(1, suffix="rejected.v1")
    assert rejected["data"]["reason"] == "slot_docks_full"
    offers = rejected["data"]["next_slots"]
    assert len(offers) == 3
    assert [datetime.fromisoformat(o["start"]) for o in offers] == [
        slot + timedelta(hours=h) for h in (1, 2, 3)
    ]
    assert all(o["free_docks"] == 2 for o in offers)

    await carrier.cancel("a", hub_id=TEST_HUB, time=NOW + timedelta(minutes=1))
    [cancelled] = await outcomes.wait_count(1, suffix="cancelled.v1")
    assert cancelled["data"]["late"] is False
    await carrier.request("d", hub_id=TEST_HUB, slot_start=slot, time=NOW + timedelta(minutes=2))
    await outcomes.wait_for(
        lambda r: any(e["data"]["carrier_reference"] == "d" for e in r.of_type("confirmed.v1")),
        what="d confirmed",
    )
    async with booking.sessions() as session:
        usage = await store.usage_of(session, TEST_HUB, slot)
    assert usage.docks_used == 2


async def test_late_cancellation_is_flagged(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    slot = _local_grid(SLOT)
    await carrier.request("late", hub_id=TEST_HUB, slot_start=slot, time=NOW)
    await outcomes.wait_count(1, suffix="confirmed.v1")
    await carrier.cancel("late", hub_id=TEST_HUB, time=slot - timedelta(minutes=30))
    [cancelled] = await outcomes.wait_count(1, suffix="cancelled.v1")
    assert cancelled["data"]["late"] is True


async def test_check_in_and_no_show(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    slot = _local_grid(SLOT)
    await carrier.request("arrives", hub_id=TEST_HUB, slot_start=slot, time=NOW)
    await carrier.request("never-comes", hub_id=TEST_HUB, slot_start=slot, time=NOW)
    await outcomes.wait_count(2, suffix="confirmed.v1")
    await carrier.check_in("arrives", hub_id=TEST_HUB, time=slot + timedelta(minutes=10))
    [checked_in] = await outcomes.wait_count(1, suffix="consignment_checked_in.v1")
    assert checked_in["data"]["carrier_reference"] == "arrives"

    # Event time moves past the slot end plus the 30 min grace with the next command at
    # this hub: the booking that never checked in becomes a no-show.
    later = slot + timedelta(hours=2)
    await carrier.request(
        "next-day", hub_id=TEST_HUB, slot_start=slot + timedelta(days=1), time=later
    )
    [no_show] = await outcomes.wait_count(1, suffix="no_show.v1")
    assert no_show["data"]["carrier_reference"] == "never-comes"
    assert no_show["time"].startswith(later.strftime("%Y-%m-%dT%H:%M"))
    # and checking in after that is refused with a reason
    await carrier.check_in("never-comes", hub_id=TEST_HUB, time=later + timedelta(minutes=1))
    [refused] = await outcomes.wait_count(1, suffix="command_rejected.v1")
    assert refused["data"]["reason"] == "booking_not_confirmed"


async def test_malformed_messages_go_to_the_dlq_and_the_next_one_is_confirmed(
    booking: BookingService, booking_settings, carrier: Carrier, outcomes: TopicReader
) -> None:
    slot = _local_grid(SLOT)
    await carrier.send_raw(b"{not json", key=TEST_HUB)
    invalid = carrier.request_data("bad", hub_id=TEST_HUB, slot_start=slot)
    del invalid["consignment"]["depot"]  # the schema requires it
    await carrier.send("microhub.booking.requested.v1", invalid, time=NOW)
    await carrier.send("microhub.booking.unheard_of.v1", {"hub_id": TEST_HUB}, time=NOW)
    await carrier.request("good", hub_id=TEST_HUB, slot_start=slot, time=NOW)

    [confirmed] = await outcomes.wait_count(1, suffix="confirmed.v1")
    assert confirmed["data"]["carrier_reference"] == "good"
    dlq_topic = booking_settings.topic("microhub.booking.commands.v1.dlq")
    async with TopicReader(booking_settings.bootstrap_list(), dlq_topic) as dlq:
        await dlq.wait_for(lambda r: len(r.records) >= 3, what="3 dead letters")
        reasons = []
        for record in dlq.records:
            headers = {k: v.decode() for k, v in record.headers}
            reasons.append(headers["x-microhub-error-reason"])
            assert headers["x-microhub-original-topic"] == booking_settings.topic(
                "microhub.booking.commands.v1"
            )
            assert int(headers["x-microhub-original-offset"]) >= 0
            assert headers["x-microhub-error-class"] == "ContractError"
            assert headers["x-microhub-error-message"]
        assert sorted(reasons) == ["invalid_payload", "not_json", "unknown_type"]
        assert dlq.records[0].value == b"{not json"  # the original bytes, untouched
    assert booking.dead_lettered == 3


async def test_clock_skew_is_rejected(
    booking_settings: Settings,
    topics: list[str],
    database_url: str,
    carrier: Carrier,
    outcomes: TopicReader,
) -> None:
    """A command backdated by an hour against its record timestamp (the producer's clock)
    is refused, with the check on (the other tests run in simulated time, check off)."""
    skew_checked = booking_settings.model_copy(update={"max_clock_skew_seconds": 300})
    service = BookingService(skew_checked, skew_checked.bootstrap_list(), database_url=database_url)
    await service.start()
    try:
        slot = _local_grid(SLOT)
        doc = carrier.request_data("skewed", hub_id=TEST_HUB, slot_start=slot)
        from tests.support.carrier import envelope

        backdated = datetime.now(UTC) - timedelta(hours=1)
        body = envelope("microhub.booking.requested.v1", doc, time=backdated, subject=TEST_HUB)
        await carrier.send_raw(json.dumps(body).encode(), key=TEST_HUB)
        [rejected] = await outcomes.wait_count(1, suffix="rejected.v1")
        assert rejected["data"]["reason"] == "clock_skew"
    finally:
        await service.stop()


async def test_restart_mid_stream_loses_nothing_and_decides_nothing_twice(
    booking_settings,
    topics: list[str],
    database_url: str,
    carrier: Carrier,
    outcomes: TopicReader,
) -> None:
    # small batches (still several records per transaction), so the 120 requests are
    # not all decided before the stop below: it must land in the middle of the stream
    small_batches = booking_settings.model_copy(update={"kafka_consumer_max_batch": 3})
    booking = BookingService(
        small_batches, small_batches.bootstrap_list(), database_url=database_url
    )
    await booking.start()
    try:
        slot = _local_grid(SLOT)
        total = 120
        for i in range(total):
            # 2 docks per slot: spread over slots so most are confirmed, some rejected
            await carrier.request(
                f"r{i}",
                hub_id=TEST_HUB,
                slot_start=slot + timedelta(hours=i % 10),
                time=NOW,
                volume_m3=0.5,
                wait=False,
            )
        await carrier.producer.flush()
        await outcomes.wait_for(lambda r: len(r.events) >= 20, what="first outcomes")
        await booking.stop()  # mid-stream
    finally:
        if booking.started:
            await booking.stop()
    assert len(outcomes.events) < total, "the restart should happen while work is pending"

    restarted = BookingService(
        booking_settings, booking_settings.bootstrap_list(), database_url=database_url
    )
    await restarted.start()
    try:
        await outcomes.wait_for(lambda r: len(r.by_reference()) >= total, what=f"{total} outcomes")
        await drained(restarted, outcomes)
        by_ref = outcomes.by_reference()
        assert sorted(by_ref) == sorted(f"r{i}" for i in range(total))
        assert all(len(events) == 1 for events in by_ref.values()), {
            k: len(v) for k, v in by_ref.items() if len(v) != 1
        }
        confirmed = len(outcomes.of_type("confirmed.v1"))
        assert confirmed == 10 * 2  # two docks in each of the 10 slots
        async with restarted.sessions() as session:
            rows = (
                await session.execute(select(func.count()).select_from(store.bookings))
            ).scalar_one()
        assert rows == total
    finally:
        await restarted.stop()


async def test_the_timer_sweep_marks_no_shows_on_a_quiet_hub(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    """No command arrives after the slot: the wall-clock sweep (same code path as the
    event-time one) declares the no-show, once."""
    slot = _local_grid(SLOT)
    await carrier.request("quiet", hub_id=TEST_HUB, slot_start=slot, time=NOW)
    await outcomes.wait_count(1, suffix="confirmed.v1")
    assert await booking.sweep_no_shows(now=slot + timedelta(minutes=61)) == 0  # within grace
    assert await booking.sweep_no_shows(now=slot + timedelta(minutes=91)) == 1
    assert await booking.sweep_no_shows(now=slot + timedelta(minutes=95)) == 0
    [no_show] = await outcomes.wait_count(1, suffix="no_show.v1")
    assert no_show["data"]["carrier_reference"] == "quiet"
