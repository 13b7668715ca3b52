"""Every command gets exactly one answer (issue 12), over a real Kafka, on PostgreSQL and
SQLite: what cannot be read goes to the DLQ without blocking its partition."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from contracts.envelope import MAX_RECORD_BYTES
from services.booking.service import BookingService
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader, envelope, monday_after
from tests.support.hubs import TEST_HUB

NOW = monday_after(datetime.now(UTC)) + timedelta(hours=5)  # Monday 06:00 Berlin (winter)
SLOT = (NOW + timedelta(days=1, hours=3)).replace(minute=0, second=0, microsecond=0)
REQUESTED = "microhub.booking.requested.v1"


@pytest.fixture
async def dead_letters(booking_settings: Settings, topics: list[str]) -> AsyncIterator[TopicReader]:
    topic = booking_settings.topic("microhub.booking.commands.v1.dlq")
    async with TopicReader(booking_settings.bootstrap_list(), topic) as reader:
        yield reader


def headers(record: Any) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


def answers_to(outcomes: TopicReader, reference: str) -> list[dict[str, Any]]:
    return [e for e in outcomes.events if e["data"].get("carrier_reference") == reference]


async def answered(outcomes: TopicReader, command: dict[str, Any], n: int = 1) -> list[dict]:
    reference = command["data"]["carrier_reference"]
    await outcomes.wait_for(
        lambda r: len(answers_to(r, reference)) >= n, what=f"{n} answer(s) to {reference}"
    )
    return answers_to(outcomes, reference)


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
    assert sorted(e["data"]["carrier_id"] for e in confirmed) == ["acme", "acme"]
