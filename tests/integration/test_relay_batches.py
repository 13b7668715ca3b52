"""The relay publishes a pass as one batch (RelayProducer.send_batch: one future for the
pass, an outcome per record). A record refused mid-pass fails its key's tail of the pass:
those rows stay pending with ``attempts`` and ``last_error`` while the other keys' rows
are marked sent; once the cause is gone, the key's events reach Kafka in their order.
Real Kafka (its topic-level ``max.message.bytes``), both databases."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from confluent_kafka import KafkaException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.booking import BookingCancellationRequested
from contracts.envelope import encode, new_event
from services.booking import store as booking_store
from services.runtime.db import make_sessionmaker
from services.runtime.outbox import enqueue_all, outbox_row
from services.runtime.outbox_relay import OutboxRelay
from services.runtime.relay_producer import RelayProducer
from services.runtime.settings import Settings
from tests.support.carrier import TopicReader
from tests.support.waiting import eventually

NARROW = 2_000  # the narrow topic's max.message.bytes; a big event is past it


def _row(reference: str, topic: str, key: str, *, big: bool = False) -> dict:
    payload = BookingCancellationRequested(
        carrier_id="acme", carrier_reference=reference, hub_id=key
    )
    event = new_event(payload, source="test", subject=key, time=datetime.now(UTC))
    encoded = encode(event)
    if big:  # same event, padded past the topic's limit (JSON allows the whitespace)
        encoded += b" " * (2 * NARROW)
    return outbox_row(
        event_id=event.id,
        event_type=event.type,
        payload=encoded,
        topic=topic,
        key=key,
        now=datetime.now(UTC),
    )


@pytest.fixture
async def admin(real_settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=real_settings.bootstrap_list())
    await client.start()
    yield client
    await client.close()


@pytest.fixture
async def producer(real_settings: Settings) -> AsyncIterator[RelayProducer]:
    relay_producer = RelayProducer(real_settings.bootstrap_list(), real_settings, client_id="t")
    await relay_producer.start()
    yield relay_producer
    await relay_producer.stop()


async def _two_topics(admin: AIOKafkaAdminClient) -> tuple[str, str]:
    """A narrow topic (small ``max.message.bytes``) and a wide one, one partition each."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    narrow, wide = f"{prefix}narrow", f"{prefix}wide"
    await admin.create_topics(
        [
            NewTopic(narrow, 1, 1, topic_configs={"max.message.bytes": str(NARROW)}),
            NewTopic(wide, 1, 1),
        ]
    )
    return narrow, wide


async def _rows(engine: AsyncEngine) -> dict[str, tuple[bool, int, str | None]]:
    """Per carrier reference: (sent, attempts, last_error)."""
    o = booking_store.outbox
    async with make_sessionmaker(engine)() as session:
        rows = (
            await session.execute(select(o.c.payload, o.c.sent_at, o.c.attempts, o.c.last_error))
        ).all()
    return {
        json.loads(r.payload)["data"]["carrier_reference"]: (
            r.sent_at is not None,
            r.attempts,
            r.last_error,
        )
        for r in rows
    }


def _references(reader: TopicReader) -> list[str]:
    return [json.loads(r.value)["data"]["carrier_reference"] for r in reader.records]


async def test_a_record_the_broker_refuses_fails_its_keys_tail_and_the_other_keys_are_sent(
    booking_engine: AsyncEngine,
    real_settings: Settings,
    admin: AIOKafkaAdminClient,
    producer: RelayProducer,
) -> None:
    narrow, wide = await _two_topics(admin)
    sessions = make_sessionmaker(booking_engine)
    relay = OutboxRelay(
        service="booking",
        engine=booking_engine,
        outbox=booking_store.outbox,
        publish_batch=producer.publish_outbox,
        poll_interval=0.01,
        max_backoff=0.2,
    )
    bootstrap = real_settings.bootstrap_list()
    async with TopicReader(bootstrap, narrow) as on_narrow, TopicReader(bootstrap, wide) as on_wide:
        relay.start()
        try:
            async with sessions() as session, session.begin():
                await enqueue_all(session, booking_store.outbox, [_row("a1", narrow, "hub-a")])
            await eventually(lambda: relay.published == 1, what="a1 published alone")
            # one pass: hub-a's second event is past the narrow topic's limit
            async with sessions() as session, session.begin():
                await enqueue_all(
                    session,
                    booking_store.outbox,
                    [
                        _row("b1", wide, "hub-b"),
                        _row("a2", narrow, "hub-a", big=True),
                        _row("b2", wide, "hub-b"),
                        _row("a3", narrow, "hub-a"),
                        _row("b3", wide, "hub-b"),
                    ],
                )

            async def refused() -> bool:
                rows = await _rows(booking_engine)
                return rows["a2"][1] >= 1 and rows["a3"][1] >= 1

            await eventually(
                refused,
                what="hub-a's tail refused",
                describe=lambda: (relay.failures, relay.published),
            )
            rows = await _rows(booking_engine)
            assert {r: rows[r][0] for r in rows} == {
                "a1": True,
                "a2": False,
                "a3": False,
                "b1": True,
                "b2": True,
                "b3": True,
            }
            assert "too large" in (rows["a2"][2] or "").lower()
            assert rows["b1"][1] == rows["b2"][1] == rows["b3"][1] == 0
            assert relay.failures >= 1

            # the operator widens the topic: the relay's retries get hub-a's tail through
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, narrow, {"max.message.bytes": "1000000"})]
            )
            await eventually(
                lambda: relay.published == 6, what="hub-a's tail published", timeout=60
            )
        finally:
            await relay.stop()
        await eventually(on_narrow.at_end, what="the narrow topic read")
        await eventually(on_wide.at_end, what="the wide topic read")
    # hub-a in order (a record published twice may repeat: consumers' inboxes drop it)
    assert list(dict.fromkeys(_references(on_narrow))) == ["a1", "a2", "a3"]
    assert _references(on_wide) == ["b1", "b2", "b3"]


async def test_a_record_librdkafka_refuses_at_once_holds_back_the_rest_of_its_key(
    real_settings: Settings, admin: AIOKafkaAdminClient, producer: RelayProducer
) -> None:
    """Past the producer's own ``message.max.bytes`` produce() refuses a record without
    sending it; the key's later records of the batch are not queued behind its back."""
    _, wide = await _two_topics(admin)
    huge = b"x" * 1_100_000
    acks = await producer.send_batch(
        [
            (wide, b"hub-a", b"a1", {}),
            (wide, b"hub-a", huge, {}),
            (wide, b"hub-b", b"b1", {}),
            (wide, b"hub-a", b"a3", {}),
            (wide, b"hub-b", b"b2", {}),
        ]
    )
    outcomes = await acks
    assert [type(o).__name__ for o in outcomes] == [
        "NoneType",
        "KafkaException",
        "NoneType",
        "KafkaException",
        "NoneType",
    ]
    assert isinstance(outcomes[1], KafkaException) and outcomes[3] is outcomes[1]
    async with TopicReader(real_settings.bootstrap_list(), wide) as reader:
        await eventually(lambda: len(reader.records) == 3, what="the queued records")
        await eventually(reader.at_end, what="the topic's end")
    assert [r.value for r in reader.records] == [b"a1", b"b1", b"b2"]
