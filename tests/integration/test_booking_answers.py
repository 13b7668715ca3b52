"""Every command gets exactly one answer (issue 12), over a real Kafka, on PostgreSQL and
SQLite: what cannot be read goes to the DLQ without blocking its partition; what can be
read is answered, also when the service fails on it; an answer names the command it
answers; a resend of the very same record is answered again, a redelivery is not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from contracts.envelope import MAX_RECORD_BYTES, decode
from services.booking import store
from services.booking.ledger import Ledger
from services.booking.service import BookingService
from services.runtime.consumer import Delivery
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader, envelope, monday_after
from tests.support.groups import drained
from tests.support.hubs import TEST_HUB

NOW = monday_after(datetime.now(UTC)) + timedelta(hours=5)  # Monday 06:00 Berlin (winter)
SLOT = (NOW + timedelta(days=1, hours=3)).replace(minute=0, second=0, microsecond=0)
REQUESTED = "microhub.booking.requested.v1"
REQUESTED_V2 = "microhub.booking.requested.v2"


@pytest.fixture
async def dead_letters(booking_settings: Settings, topics: list[str]) -> AsyncIterator[TopicReader]:
    topic = booking_settings.topic("microhub.booking.commands.v1.dlq")
    async with TopicReader(booking_settings.bootstrap_list(), topic) as reader:
        yield reader


def headers(record: Any) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


def answers_to(outcomes: TopicReader, command_id: str) -> list[dict[str, Any]]:
    return [e for e in outcomes.events if e.get("causationid") == command_id]


async def answered(outcomes: TopicReader, command: dict[str, Any], n: int = 1) -> list[dict]:
    await outcomes.wait_for(
        lambda r: len(answers_to(r, command["id"])) >= n,
        what=f"{n} answer(s) to {command['id']} ({command['data'].get('carrier_reference')})",
    )
    return answers_to(outcomes, command["id"])


async def test_a_record_nested_without_end_is_dead_lettered_and_its_partition_moves_on(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader, dead_letters: TopicReader
) -> None:
    await carrier.send_raw(b"[" * 200_000, key=TEST_HUB)
    after = await carrier.request("after-deep", hub_id=TEST_HUB, slot_start=SLOT, time=NOW)
    [answer] = await answered(outcomes, after)
    assert answer["type"] == "microhub.booking.confirmed.v1"
    await dead_letters.wait_for(lambda r: len(r.records) >= 1, what="the dead letter")
    [record] = dead_letters.records
    assert headers(record)["x-microhub-error-reason"] == "not_json"
    assert "recursion" in headers(record)["x-microhub-error-message"]
    assert record.value == b"[" * 200_000


async def test_a_record_said_to_be_json_that_is_not_is_dead_lettered_and_its_partition_moves_on(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader, dead_letters: TopicReader
) -> None:
    """FastStream parsed a body itself, before the consumer saw it, when the record's
    content-type header said JSON: a body that was not failed every delivery, silently."""
    await carrier.producer.send_and_wait(
        carrier.prefix + "microhub.booking.commands.v1",
        b"{not json",
        key=TEST_HUB.encode(),
        headers=[("content-type", b"application/json")],
    )
    after = await carrier.request("after-not-json", hub_id=TEST_HUB, slot_start=SLOT, time=NOW)
    await answered(outcomes, after)
    await dead_letters.wait_for(lambda r: len(r.records) >= 1, what="the dead letter")
    assert headers(dead_letters.records[0])["x-microhub-error-reason"] == "not_json"


async def test_a_command_over_the_size_limit_is_dead_lettered_and_its_partition_moves_on(
    booking: BookingService,
    booking_settings: Settings,
    carrier: Carrier,
    outcomes: TopicReader,
    dead_letters: TopicReader,
) -> None:
    """1.1 MB of JSON compresses to a few kB: Kafka takes it (its limit applies to the
    compressed batch), the service refuses to read it and its copy in the DLQ is cut to
    the limit (the original stays in the commands topic, where the headers point).
    Before: decoded, found invalid (too many stops), and its dead letter refused by the
    producer (over its max_request_size), again and again: the partition stalled."""
    data = carrier.request_data("huge", hub_id=TEST_HUB, slot_start=SLOT)
    stop = data["consignment"]["stops"][0]
    data["consignment"]["stops"] = [{**stop, "stop_id": f"s{i}"} for i in range(15_000)]
    document = envelope(REQUESTED, data, time=NOW, subject=TEST_HUB)
    assert len(json.dumps(document)) > 1_100_000
    raw = json.dumps(document).encode()
    producer = AIOKafkaProducer(
        bootstrap_servers=booking_settings.bootstrap_list(),
        compression_type="gzip",
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            booking_settings.topic("microhub.booking.commands.v1"), raw, key=TEST_HUB.encode()
        )
    finally:
        await producer.stop()
    after = await carrier.request("after-huge", hub_id=TEST_HUB, slot_start=SLOT, time=NOW)
    [answer] = await answered(outcomes, after)
    assert answer["type"] == "microhub.booking.confirmed.v1"
    await dead_letters.wait_for(lambda r: len(r.records) >= 1, what="the dead letter")
    [record] = dead_letters.records
    meta = headers(record)
    assert meta["x-microhub-error-reason"] == "too_large"
    assert meta["x-microhub-original-size"] == str(len(raw))
    assert meta["x-microhub-truncated"] == "true"
    assert record.value == raw[:MAX_RECORD_BYTES]
    assert not [e for e in outcomes.events if e["data"].get("carrier_reference") == "huge"]


async def test_two_carriers_may_use_the_same_event_id(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    """CloudEvents identity is source + id: counters are common, so two carriers' first
    commands both have id "1"; each is decided and answered."""
    sent = []
    for source, reference in (("carrier/acme", "a-1"), ("carrier/zoom", "z-1")):
        data = carrier.request_data(reference, hub_id=TEST_HUB, slot_start=SLOT)
        document = envelope(REQUESTED, data, time=NOW, subject=TEST_HUB)
        document.update(id="1", source=source)
        await carrier.send_raw(json.dumps(document).encode(), key=TEST_HUB)
        sent.append(document)
    await outcomes.wait_count(2, suffix="confirmed.v1")
    confirmed = outcomes.of_type("confirmed.v1")
    assert sorted(e["data"]["carrier_reference"] for e in confirmed) == ["a-1", "z-1"]
    assert sorted(e["causationsource"] for e in confirmed) == ["carrier/acme", "carrier/zoom"]
    assert {e["causationid"] for e in confirmed} == {"1"}


async def test_a_resent_record_gets_the_original_answer_again(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    """The very same record sent again (same source and id: a carrier's retry after a
    timeout) is answered with what the first one got; nothing is decided twice. For a
    rejection too, and for a cancellation."""
    full = carrier.request_data("too-big", hub_id=TEST_HUB, slot_start=SLOT, volume_m3=50.0)
    records = [
        envelope(REQUESTED, carrier.request_data("r", hub_id=TEST_HUB, slot_start=SLOT), time=NOW, subject=TEST_HUB),
        envelope(REQUESTED, full, time=NOW, subject=TEST_HUB),
    ]  # fmt: skip
    for document in records:
        await carrier.send_raw(json.dumps(document).encode(), key=TEST_HUB)
        await answered(outcomes, document)
    for document in records:
        await carrier.send_raw(json.dumps(document).encode(), key=TEST_HUB)  # resent
    for document in records:
        first, again = await answered(outcomes, document, 2)
        assert again["data"] == first["data"] and again["type"] == first["type"]
        assert again["id"] != first["id"]
        assert again["causationsource"] == document["source"] == "carrier/test"
    assert [a["type"] for a in answers_to(outcomes, records[1]["id"])] == [
        "microhub.booking.rejected.v1"
    ] * 2

    cancel = envelope(
        "microhub.booking.cancellation_requested.v1",
        {"carrier_id": "acme", "carrier_reference": "r", "hub_id": TEST_HUB},
        time=NOW + timedelta(minutes=5),
        subject=TEST_HUB,
    )
    for _ in range(2):
        await carrier.send_raw(json.dumps(cancel).encode(), key=TEST_HUB)
    first, again = await answered(outcomes, cancel, 2)
    assert first["type"] == again["type"] == "microhub.booking.cancelled.v1"
    await drained(booking, outcomes)
    assert len(answers_to(outcomes, cancel["id"])) == 2
    async with booking.sessions() as session:
        usage = await store.usage_of(session, TEST_HUB, SLOT)
    assert usage.docks_used == 0  # freed once, not twice


async def test_a_redelivered_record_is_not_answered_twice(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    """Kafka redelivers a record whose offset was not committed (a crash after the
    transaction): it is the same record at the same position, already answered in that
    transaction, so it changes nothing and emits nothing."""
    document = envelope(
        REQUESTED,
        carrier.request_data("redelivered", hub_id=TEST_HUB, slot_start=SLOT),
        time=NOW,
        subject=TEST_HUB,
    )
    event = decode(json.dumps(document).encode())
    consumer = booking.consumer("booking")
    position = (consumer.topic, 3, 41)
    delivery = Delivery(event, *position, timestamp_ms=None, key=TEST_HUB)
    await consumer.apply([delivery])
    await consumer.apply([delivery])  # redelivered: same topic, partition and offset
    later = await carrier.request("later", hub_id=TEST_HUB, slot_start=SLOT, time=NOW)
    await answered(outcomes, later)
    await drained(booking, outcomes)
    assert len(answers_to(outcomes, document["id"])) == 1
    assert consumer.stats.duplicates == 1


async def test_a_resend_redelivered_after_a_crash_is_not_answered_again(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    """A command and its resend applied in one batch, then the whole batch redelivered
    (the consumer died before committing the offsets): each record was answered once
    and is not answered again, the resend included (it is at an offset the inbox has
    seen for this command)."""
    document = envelope(
        REQUESTED,
        carrier.request_data("crashed", hub_id=TEST_HUB, slot_start=SLOT),
        time=NOW,
        subject=TEST_HUB,
    )
    event = decode(json.dumps(document).encode())
    consumer = booking.consumer("booking")
    batch = [
        Delivery(event, consumer.topic, 3, offset, timestamp_ms=None, key=TEST_HUB)
        for offset in (70, 71)  # the command, and the carrier's resend of it
    ]
    await consumer.apply(batch)
    await consumer.apply(batch)  # redelivered after a crash
    await consumer.apply(batch[1:])  # and the resend once more
    later = await carrier.request("after-crash", hub_id=TEST_HUB, slot_start=SLOT, time=NOW)
    await answered(outcomes, later)
    await drained(booking, outcomes)
    assert len(answers_to(outcomes, document["id"])) == 2


async def test_a_failing_handler_answers_internal_error_and_dead_letters_the_record(
    booking: BookingService,
    carrier: Carrier,
    outcomes: TopicReader,
    dead_letters: TopicReader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*_args: Any, **_kw: Any) -> None:
        raise ValueError("a bug that fails every time")

    # writing a decided batch back fails, whatever the batch
    monkeypatch.setattr(Ledger, "save", broken)
    command = await carrier.request("unlucky", hub_id=TEST_HUB, slot_start=SLOT, time=NOW)
    [answer] = await answered(outcomes, command)
    assert answer["type"] == "microhub.booking.command_rejected.v2"
    assert answer["data"]["reason"] == "internal_error"
    assert answer["data"]["command_type"] == REQUESTED
    assert answer["data"]["carrier_reference"] == "unlucky"
    assert "ValueError" in answer["data"]["message"]
    await dead_letters.wait_for(lambda r: len(r.records) >= 1, what="the dead letter")
    [record] = dead_letters.records
    assert headers(record)["x-microhub-error-reason"] == "handler_failed"
    assert headers(record)["x-microhub-error-class"] == "ValueError"

    monkeypatch.undo()  # fixed: a new command with the same reference is decided
    retry = await carrier.request("unlucky", hub_id=TEST_HUB, slot_start=SLOT, time=NOW)
    [decided] = await answered(outcomes, retry)
    assert decided["type"] == "microhub.booking.confirmed.v1"


@pytest.mark.parametrize(
    "slot_start",
    ["9999-12-31T23:00:00+00:00", "9999-12-31T23:30:00-05:00", "0001-01-01T00:30:00+05:00"],
)
async def test_a_slot_at_the_edge_of_the_calendar_is_rejected_with_a_reason(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader, slot_start: str
) -> None:
    data = carrier.request_data("far", hub_id=TEST_HUB, slot_start=SLOT)
    data["slot_start"] = slot_start
    command = await carrier.send(REQUESTED, data, time=NOW)
    [answer] = await answered(outcomes, command)
    assert answer["type"] == "microhub.booking.rejected.v1"
    expected = "slot_in_the_past" if slot_start.startswith("0001") else "slot_beyond_horizon"
    assert answer["data"]["reason"] == expected


async def test_rules_the_schema_cannot_express_are_answered_with_a_reason(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader, dead_letters: TopicReader
) -> None:
    mismatch = carrier.request_data("mismatch", hub_id=TEST_HUB, slot_start=SLOT)
    mismatch["consignment"]["parcel_count"] = 999
    duplicate = carrier.request_data("duplicate", hub_id=TEST_HUB, slot_start=SLOT)
    for stop in duplicate["consignment"]["stops"]:
        stop["stop_id"] = "same"
    for data, reason in ((mismatch, "parcel_count_mismatch"), (duplicate, "duplicate_stop_id")):
        command = await carrier.send(REQUESTED, data, time=NOW)
        [answer] = await answered(outcomes, command)
        assert answer["type"] == "microhub.booking.command_rejected.v2"
        assert answer["data"]["reason"] == reason
        assert answer["data"]["carrier_reference"] == data["carrier_reference"]
        assert answer["data"]["booking_id"]
    # not stored: the carrier corrects the consignment and sends it with the same reference
    fixed = carrier.request_data("mismatch", hub_id=TEST_HUB, slot_start=SLOT)
    [decided] = await answered(outcomes, await carrier.send(REQUESTED, fixed, time=NOW))
    assert decided["type"] == "microhub.booking.confirmed.v1"
    assert dead_letters.records == []


async def test_a_v2_window_that_cannot_be_kept_is_answered_with_a_reason(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader, dead_letters: TopicReader
) -> None:
    def with_window(reference: str, start: datetime, end: datetime) -> dict[str, Any]:
        data = carrier.request_data(reference, hub_id=TEST_HUB, slot_start=SLOT)
        data["consignment"]["stops"][-1]["window"] = {
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        return data

    backwards = with_window("backwards", SLOT + timedelta(hours=3), SLOT + timedelta(hours=1))
    empty = with_window("empty", SLOT + timedelta(hours=2), SLOT + timedelta(hours=2))
    early = with_window("early", SLOT - timedelta(hours=2), SLOT)
    for data, reason in (
        (backwards, "window_backwards"),
        (empty, "window_backwards"),
        (early, "window_before_slot"),
    ):
        command = await carrier.send(REQUESTED_V2, data, time=NOW)
        [answer] = await answered(outcomes, command)
        assert answer["type"] == "microhub.booking.command_rejected.v2"
        assert answer["data"]["reason"] == reason
        assert answer["data"]["command_type"] == REQUESTED_V2
        assert answer["data"]["carrier_reference"] == data["carrier_reference"]
        stop_id = data["consignment"]["stops"][-1]["stop_id"]
        assert stop_id in answer["data"]["message"]
    # nothing was stored: the corrected request under the same reference is booked
    fixed = with_window("backwards", SLOT + timedelta(hours=1), SLOT + timedelta(hours=3))
    [decided] = await answered(outcomes, await carrier.send(REQUESTED_V2, fixed, time=NOW))
    assert decided["type"] == "microhub.booking.confirmed.v1"
    assert dead_letters.records == []


async def test_a_string_where_the_schema_says_integer_is_dead_lettered_not_booked(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader, dead_letters: TopicReader
) -> None:
    data = carrier.request_data("stringly", hub_id=TEST_HUB, slot_start=SLOT)
    data["consignment"]["parcel_count"] = "4"
    await carrier.send(REQUESTED, data, time=NOW)
    after = await carrier.request("after-string", hub_id=TEST_HUB, slot_start=SLOT, time=NOW)
    await answered(outcomes, after)
    await dead_letters.wait_for(lambda r: len(r.records) >= 1, what="the dead letter")
    assert headers(dead_letters.records[0])["x-microhub-error-reason"] == "invalid_payload"
    assert not [e for e in outcomes.events if e["data"].get("carrier_reference") == "stringly"]


async def test_answers_name_their_command_and_no_shows_do_not(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    booked = await carrier.request("named", hub_id=TEST_HUB, slot_start=SLOT, time=NOW)
    [confirmed] = await answered(outcomes, booked)
    assert confirmed["causationsource"] == "carrier/test"
    # event time passes the slot: the next command settles the no-show, then is answered
    later = SLOT + timedelta(hours=3)
    trigger = await carrier.request(
        "next", hub_id=TEST_HUB, slot_start=SLOT + timedelta(days=1), time=later
    )
    [no_show] = await outcomes.wait_count(1, suffix="no_show.v1")
    assert "causationid" not in no_show and "causationsource" not in no_show
    [answer] = await answered(outcomes, trigger)
    assert answer["data"]["carrier_reference"] == "next"
