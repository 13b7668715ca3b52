"""The services' consumer group member on librdkafka (services/runtime/rdkafka_consumer.py),
against a real Kafka: it keeps fetching while a batch is decided (what reached the broker
meanwhile is the next batch, whole), a batch that fails is read again from its first
record, what was decided is committed on stop, so the next member of the group starts
after it (nothing twice, nothing skipped), what a fetch brings after the stop began is left for the
next member, and a record larger than a fetch still comes
(KIP-74), so it does not stall its partition."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka import Producer, TopicPartition

from services.runtime.kafka_security import librdkafka_security_config
from services.runtime.rdkafka_consumer import (
    FetchedRecord,
    RdkafkaSubscription,
    consumer_config,
)
from services.runtime.settings import Settings
from tests.support.waiting import eventually


@pytest.fixture
async def topic(real_settings: Settings) -> AsyncIterator[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=real_settings.bootstrap_list())
    await admin.start()
    name = f"t{uuid.uuid4().hex[:10]}.commands"
    await admin.create_topics([NewTopic(name, 1, 1)])
    yield name
    await admin.close()


def _send(settings: Settings, topic: str, values: list[str]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for value in values:
        producer.produce(topic, value.encode(), key=b"hub")
    assert producer.flush(30) == 0


def _member(
    settings: Settings,
    topic: str,
    group: str,
    on_batch,
    max_batch: int = 500,
    fetch_min_bytes: int = 1,
    fetch_max_wait_ms: int = 500,
) -> RdkafkaSubscription:
    config = consumer_config(
        bootstrap=settings.bootstrap_list(),
        client_id="test",
        group_id=group,
        fetch_max_wait_ms=fetch_max_wait_ms,
        max_partition_fetch_bytes=2 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
        security=librdkafka_security_config(settings),
        fetch_min_bytes=fetch_min_bytes,
    )
    return RdkafkaSubscription(
        config, name="test", topic=topic, pattern=False, max_batch=max_batch, on_batch=on_batch
    )


async def _next_member_reads(
    settings: Settings, topic: str, group: str, count: int
) -> tuple[list[int], list[tuple[str, int]]]:
    """The offsets the group's next member is handed (``count`` at least), and what it
    was assigned."""
    offsets: list[int] = []

    async def on_batch(records: list[FetchedRecord]) -> None:
        offsets.extend(r.offset for r in records)

    member = _member(settings, topic, group, on_batch)
    await member.start()
    try:
        await eventually(lambda: len(offsets) >= count, what="the next member's records")
        assigned = [(p.topic, p.partition) for p in member.assignment()]
    finally:
        await member.stop()
    return offsets, assigned


async def test_what_arrives_while_a_batch_is_decided_is_fetched_meanwhile(
    real_settings: Settings, topic: str
) -> None:
    """aiokafka fetched a partition again only after its held records were consumed: what
    reached the broker during a batch came in pieces over the next batches."""
    batches: list[list[bytes | None]] = []
    deciding, release = asyncio.Event(), asyncio.Event()

    async def on_batch(records: list[FetchedRecord]) -> None:
        batches.append([r.value for r in records])
        if len(batches) == 1:
            deciding.set()
            await release.wait()

    _send(real_settings, topic, ["first"])
    member = _member(real_settings, topic, f"g-{uuid.uuid4().hex[:8]}", on_batch)
    await member.start()
    try:
        await asyncio.wait_for(deciding.wait(), 60)
        later = [f"later-{i}" for i in range(50)]
        _send(real_settings, topic, later)
        consumer = member._consumer
        assert consumer is not None

        def fetched_all() -> bool:  # the last fetch response's high watermark
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), cached=True)
            return high >= 1 + len(later)

        # the first batch is still being decided, and the member fetched on
        await eventually(fetched_all, what="the member to fetch while the batch is decided")
        assert len(batches) == 1
        # what the metrics scrape reads: fetched is not read; the fifty wait
        assert member.lag() == [(topic, 0, len(later))]
        release.set()
        await eventually(lambda: len(batches) >= 2, what="the next batch")
        assert batches[1] == [v.encode() for v in later]
    finally:
        release.set()
        await member.stop()


@pytest.mark.parametrize(("fetch_min_bytes", "most_batches"), [(1, None), (1024 * 1024, 8)])
async def test_fetch_min_bytes_makes_the_broker_answer_fewer_larger_fetches(
    real_settings: Settings, topic: str, fetch_min_bytes: int, most_batches: int | None
) -> None:
    """MICROHUB_KAFKA_FETCH_MIN_BYTES reaches the broker. Sixty records, each sent once
    the last was acked: with 1, the broker answers each fetch as soon as a record is
    there, so they come in many batches; with 1 MiB it holds each fetch for the whole
    wait (300 ms), so they come in a few."""
    batches: list[int] = []
    values = [f"r-{i}" for i in range(60)]

    async def on_batch(records: list[FetchedRecord]) -> None:
        batches.append(len(records))

    member = _member(
        real_settings, topic, f"g-{uuid.uuid4().hex[:8]}", on_batch,
        fetch_min_bytes=fetch_min_bytes, fetch_max_wait_ms=300,
    )  # fmt: skip
    producer = Producer({"bootstrap.servers": real_settings.kafka_bootstrap_servers})
    await member.start()
    try:
        # a first record read: the member is assigned and its next fetch is in flight
        _send(real_settings, topic, ["first"])
        await eventually(lambda: batches == [1], what="the member to read the first record")
        batches.clear()
        for value in values:  # one at a time: each sent once the broker acked the last
            producer.produce(topic, value.encode(), key=b"hub")
            assert await asyncio.to_thread(producer.flush, 30) == 0
        await eventually(lambda: sum(batches) == len(values), what="every record")
    finally:
        await member.stop()
    if most_batches is None:
        assert len(batches) > 15, batches
    else:
        assert len(batches) <= most_batches, batches


async def test_a_failed_batch_is_read_again_and_stop_commits_what_was_decided(
    real_settings: Settings, topic: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    seen: list[list[int]] = []
    decided: list[bytes | None] = []

    async def failing_once(records: list[FetchedRecord]) -> None:
        seen.append([r.offset for r in records])
        if len(seen) == 1:
            raise RuntimeError("the dead-letter topic is unreachable, say")
        decided.extend(r.value for r in records)

    _send(real_settings, topic, ["a", "b", "c"])
    first = _member(real_settings, topic, group, failing_once)
    await first.start()
    try:
        await eventually(lambda: len(decided) == 3, what="the batch read again and decided")
    finally:
        await first.stop()
    assert seen[0] == [0, 1, 2] and seen[-1][0] == 0  # again from its first record
    assert decided == [b"a", b"b", b"c"]

    # the next member of the group starts after what was decided: nothing twice
    _send(real_settings, topic, ["d", "e"])
    after, assigned = await _next_member_reads(real_settings, topic, group, 2)
    assert assigned == [(topic, 0)]
    assert after == [3, 4]


async def test_what_a_fetch_brings_after_the_stop_began_is_neither_decided_nor_committed(
    real_settings: Settings, topic: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    decided: list[int] = []

    async def on_batch(records: list[FetchedRecord]) -> None:
        decided.extend(r.offset for r in records)

    member = _member(real_settings, topic, group, on_batch)
    fetch = member._fetch
    brought: list[int] = []

    def fetch_while_the_stop_begins() -> list:
        messages = fetch()
        if messages:  # SIGTERM arrives while this fetch is in the member's thread
            member.stopping = True
            brought.extend(m.offset() for m in messages)
        return messages

    member._fetch = fetch_while_the_stop_begins  # type: ignore[method-assign]
    await member.start()
    try:
        await eventually(lambda: bool(member.assignment()), what="the partition assigned")
        _send(real_settings, topic, ["a", "b"])
        await eventually(lambda: bool(brought), what="a fetch bringing the records")
    finally:
        await member.stop()
    assert decided == []  # the stop did not wait for a new batch

    # and nothing was committed for it: the group's next member decides both
    after, _ = await _next_member_reads(real_settings, topic, group, 2)
    assert after == [0, 1]


async def test_a_record_larger_than_a_fetch_still_comes_and_the_next_after_it(
    real_settings: Settings,
) -> None:
    """README: a topic whose limit was raised past the consumers' 2 MiB per partition does
    not stall them: Kafka returns the first record batch whatever the fetch size."""
    admin = AIOKafkaAdminClient(bootstrap_servers=real_settings.bootstrap_list())
    await admin.start()
    wide = f"t{uuid.uuid4().hex[:10]}.wide"
    try:
        await admin.create_topics(
            [NewTopic(wide, 1, 1, topic_configs={"max.message.bytes": str(4 * 1024 * 1024)})]
        )
    finally:
        await admin.close()
    producer = Producer(
        {
            "bootstrap.servers": real_settings.kafka_bootstrap_servers,
            "message.max.bytes": 5 * 1024 * 1024,
        }
    )
    producer.produce(wide, b"x" * (3 * 1024 * 1024))
    producer.produce(wide, b"small")
    assert producer.flush(30) == 0
    sizes: list[int] = []

    async def on_batch(records: list[FetchedRecord]) -> None:
        sizes.extend(len(r.value or b"") for r in records)

    member = _member(real_settings, wide, f"g-{uuid.uuid4().hex[:8]}", on_batch)
    await member.start()
    try:
        await eventually(lambda: len(sizes) >= 2, what="both records", timeout=60)
    finally:
        await member.stop()
    assert sizes == [3 * 1024 * 1024, len(b"small")]
