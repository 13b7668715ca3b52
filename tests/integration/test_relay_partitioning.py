"""The relay's producer (librdkafka) puts a keyed event on the partition every other
client of ours computes for that key (the Java client's murmur2, aiokafka's default).

Found the hard way: librdkafka's own default (consistent_random, CRC32) put a hub's
events on other partitions than the simulation watched, and the demo's routes changed
from run to run."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner

from contracts.topics import BOOKING_EVENTS
from services.runtime.relay_producer import RelayProducer
from services.runtime.settings import Settings
from tests.support.waiting import eventually

HUBS = [f"hub-{i}" for i in range(40)]


async def test_a_hubs_events_land_where_the_java_partitioner_puts_them(
    settings: Settings, topics: list[str]
) -> None:
    topic = settings.topic(BOOKING_EVENTS.name)
    producer = RelayProducer(settings.bootstrap_list(), settings, client_id="test")
    await producer.start()
    try:
        acks = [await producer.send(topic, b"{}", key=h.encode(), headers=[]) for h in HUBS]
        for ack in acks:
            await ack
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_list(), auto_offset_reset="earliest"
    )
    await consumer.start()
    landed: dict[str, int] = {}
    try:

        async def all_read() -> bool:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    assert record.key is not None
                    landed[record.key.decode()] = tp.partition
            return len(landed) == len(HUBS)

        await eventually(all_read, what="the relay's records")
        partitions = sorted(consumer.partitions_for_topic(topic) or [])
    finally:
        await consumer.stop()

    java = DefaultPartitioner()
    expected = {h: java(h.encode(), partitions, partitions) for h in HUBS}
    assert landed == expected
    assert len(set(landed.values())) > 1  # the keys spread: the check can tell them apart
