"""A relay that takes over from one that died between publishing rows and marking them
sent publishes each of them once: it reads back what its predecessor had put on the
topic (by the row ids in the records' headers) and marks those rows before its first
pass. Runs on a real Kafka (ListOffsets by time) and on both databases."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from contracts.booking import BookingCancellationRequested
from contracts.envelope import new_event
from services.booking import store as booking_store
from services.runtime.db import make_sessionmaker
from services.runtime.outbox import OUTBOX_HEADER, OUTBOX_ID_HEADER, enqueue
from services.runtime.outbox_relay import OutboxRelay
from services.runtime.outbox_tail import published_outbox_ids
from services.runtime.settings import Settings
from tests.support.carrier import TopicReader
from tests.support.waiting import eventually

ROWS = 10
PUBLISHED_BEFORE_THE_CRASH = 6


async def test_a_relay_taking_over_publishes_what_its_predecessor_left_once(
    booking_engine, real_settings: Settings
) -> None:
    topic = real_settings.topic("outbox.takeover")
    bootstrap = real_settings.bootstrap_list()
    sessions = make_sessionmaker(booking_engine)
    async with sessions() as session, session.begin():
        for i in range(ROWS):
            payload = BookingCancellationRequested(
                carrier_id="acme", carrier_reference=f"r{i}", hub_id=f"hub-{i % 3}"
            )
            event = new_event(
                payload, source="test", subject=payload.hub_id, time=datetime.now(UTC)
            )
            await enqueue(session, booking_store.outbox, event, topic=topic, key=payload.hub_id)
    o = booking_store.outbox
    async with sessions() as session:
        rows = (await session.execute(select(o.c.id, o.c.key, o.c.payload).order_by(o.c.id))).all()

    # the predecessor published the first rows, as its relay does, and died unmarked
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for row in rows[:PUBLISHED_BEFORE_THE_CRASH]:
            headers = [(OUTBOX_HEADER, b"booking"), (OUTBOX_ID_HEADER, str(row.id).encode())]
            await producer.send_and_wait(topic, row.payload, key=row.key.encode(), headers=headers)
    finally:
        await producer.stop()

    async def publish(topic_name, key, payload, headers):
        return await successor_producer.send(
            topic_name, payload, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
        )

    successor_producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await successor_producer.start()
    relay = OutboxRelay(
        service="booking",
        engine=booking_engine,
        outbox=booking_store.outbox,
        publish=publish,
        poll_interval=0.01,
        find_published=functools.partial(published_outbox_ids, bootstrap, real_settings, "booking"),
    )
    try:
        async with TopicReader(bootstrap, topic) as reader:
            relay.start()
            await reader.wait_count(ROWS)
            await relay.flush()
            await eventually(reader.at_end, what="the reader at the topic's end")
            references = [json.loads(r.value)["data"]["carrier_reference"] for r in reader.records]
    finally:
        await relay.stop()
        await successor_producer.stop()

    assert relay.reconciled == PUBLISHED_BEFORE_THE_CRASH
    assert sorted(references) == sorted(f"r{i}" for i in range(ROWS))  # each exactly once
