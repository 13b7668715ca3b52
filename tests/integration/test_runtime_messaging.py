"""The shared runtime on both databases: outbox relay, inbox, migrations."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from contracts.booking import BookingCancellationRequested
from contracts.envelope import new_event
from services.app.registry import service_class, service_names
from services.booking import store as booking_store
from services.runtime import inbox, migrations
from services.runtime.db import make_engine, make_sessionmaker, writing
from services.runtime.outbox import enqueue, pending_count
from services.runtime.outbox_relay import OutboxRelay
from services.runtime.settings import Settings
from services.runtime.uow import UnitsOfWork
from tests.support.carrier import TopicReader
from tests.support.waiting import eventually


def _event(ref: str, hub: str):
    payload = BookingCancellationRequested(carrier_id="acme", carrier_reference=ref, hub_id=hub)
    return new_event(payload, source="test", subject=hub, time=datetime(2027, 1, 1, tzinfo=UTC))


async def test_relay_publishes_in_order_retries_and_marks_sent(booking_engine) -> None:
    sessions = make_sessionmaker(booking_engine)
    async with sessions() as session, session.begin():
        for i in range(7):
            await enqueue(
                session,
                booking_store.outbox,
                _event(f"r{i}", f"hub-{i % 2}"),
                topic="t",
                key=f"hub-{i % 2}",
            )
    published: list[bytes] = []
    failures_left = 2

    async def publish(topic, key, payload, headers):
        # hub-0's first two records fail; hub-1's go through. Like an idempotent producer,
        # the partition's records after a failed one fail too (until the next batch).
        nonlocal failures_left
        future = asyncio.get_running_loop().create_future()
        if key == b"hub-0" and failures_left:
            failures_left -= 1
            future.set_exception(ConnectionError("broker away"))
        else:
            published.append(payload)
            future.set_result(None)
        return future

    relay = OutboxRelay(
        service="booking",
        engine=booking_engine,
        outbox=booking_store.outbox,
        publish=publish,
        batch_size=3,
        poll_interval=0.01,
        max_backoff=0.05,
    )
    relay.start()
    await asyncio.wait_for(relay.flush(), timeout=10)
    await relay.stop()
    assert relay.failures >= 1
    sent = [json.loads(p)["data"] for p in published]
    assert sorted({d["carrier_reference"] for d in sent}) == [f"r{i}" for i in range(7)]
    # per key, what a consumer sees first comes in the order it was written
    for hub in ("hub-0", "hub-1"):
        refs = list(dict.fromkeys(d["carrier_reference"] for d in sent if d["hub_id"] == hub))
        assert refs == sorted(refs, key=lambda r: int(r[1:]))
    async with sessions() as session:
        assert await pending_count(session, booking_store.outbox) == 0
        attempts = (await session.execute(select(booking_store.outbox.c.attempts))).scalars().all()
        assert max(attempts) >= 1


async def test_nothing_is_published_before_its_transaction_commits(
    booking_engine, settings: Settings
) -> None:
    """A running relay, publishing to the real Kafka, polls the outbox again and again
    while a transaction that enqueued an event is open: nothing goes out until it
    commits, and what a rolled-back transaction enqueued never does."""
    topic = settings.topic("outbox.order")
    sessions = make_sessionmaker(booking_engine)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_list(), enable_idempotence=True, acks="all"
    )
    await producer.start()
    published: list[str] = []

    async def publish(topic_name, key, payload, headers):
        published.append(json.loads(payload)["data"]["carrier_reference"])
        return await producer.send(topic_name, payload, key=key)

    relay = OutboxRelay(
        service="booking",
        engine=booking_engine,
        outbox=booking_store.outbox,
        publish=publish,
        poll_interval=0.01,
    )

    async def passes(more: int) -> None:
        target = relay.passes + more
        await eventually(lambda: relay.passes >= target, what=f"{more} relay passes")

    relay.start()
    try:
        async with TopicReader(settings.bootstrap_list(), topic) as reader:
            # one writer at a time (SQLite allows no more): first one that is rolled back
            async with sessions() as session:
                async with session.begin():
                    await enqueue(
                        session, booking_store.outbox, _event("undone", "h"), topic=topic, key="h"
                    )
                    await passes(5)  # the relay looked while it was open
                    await session.rollback()
            in_flight = sessions()
            await in_flight.begin()
            await enqueue(
                in_flight, booking_store.outbox, _event("kept", "h"), topic=topic, key="h"
            )
            await passes(5)
            assert published == [] and reader.events == []

            await in_flight.commit()
            await in_flight.close()
            [event] = await reader.wait_count(1)
            assert event["data"]["carrier_reference"] == "kept"
            await passes(5)
            assert published == ["kept"]
            async with sessions() as session:
                assert await pending_count(session, booking_store.outbox) == 0
    finally:
        await relay.stop()
        await producer.stop()


async def test_inbox_claims_an_event_once_per_consumer(booking_engine) -> None:
    sessions = make_sessionmaker(booking_engine)
    claim = dict(source="s", event_id="e1", topic="t", partition=0, offset=1)
    async with sessions() as session, session.begin():
        assert (await inbox.claim(session, booking_store.inbox, consumer="a", **claim)).fresh
        assert not (await inbox.claim(session, booking_store.inbox, consumer="a", **claim)).fresh
        assert (await inbox.claim(session, booking_store.inbox, consumer="b", **claim)).fresh


@pytest.mark.parametrize("service", service_names())
async def test_migrations_match_the_models(service: str, database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        spec = service_class(service).spec
        await spec.migrate(engine)
        await spec.migrate(engine)  # idempotent
        metadata = __import__(f"services.{service}.store", fromlist=["metadata"]).metadata

        def diff(connection):
            context = MigrationContext.configure(
                connection, opts={"version_table": migrations.version_table(service)}
            )
            return compare_metadata(context, metadata)

        async with engine.connect() as connection:
            changes = await connection.run_sync(diff)
        assert changes == [], f"{service}: models and migrations differ: {changes}"
        assert service_class(service).spec.name == service
    finally:
        await engine.dispose()


async def test_publish_now_publishes_before_it_returns_and_gives_up_without_losing(
    booking_engine,
) -> None:
    """What a consumer awaits before committing its offset: the rows are in Kafka when
    it returns. A broker that does not ack in time makes it give up waiting, but the pass
    is not cancelled halfway (that would leave records in the producer that a later pass
    sends again): it goes on, and when the producer finally fails the records, the rows
    are still pending and the relay sends them again, once."""
    sessions = make_sessionmaker(booking_engine)
    published: list[bytes] = []
    unacked: list[asyncio.Future[None]] = []
    acking = True

    async def publish(topic, key, payload, headers):
        future = asyncio.get_running_loop().create_future()
        if acking:
            published.append(payload)
            future.set_result(None)
        else:
            unacked.append(future)  # in the producer's hands, no answer yet
        return future

    relay = OutboxRelay(
        service="booking",
        engine=booking_engine,
        outbox=booking_store.outbox,
        publish=publish,
        poll_interval=3600,  # the loop's own pass happens at start, then only when woken
    )
    relay.start()
    await eventually(lambda: relay.passes >= 1, what="the relay's first pass")
    async with sessions() as session, session.begin():
        await enqueue(session, booking_store.outbox, _event("a", "h"), topic="t", key="h")
    await relay.publish_now(timeout=5)
    assert [json.loads(p)["data"]["carrier_reference"] for p in published] == ["a"]

    acking = False
    async with sessions() as session, session.begin():
        await enqueue(session, booking_store.outbox, _event("b", "h"), topic="t", key="h")
    await relay.publish_now(timeout=0.3)
    assert relay.acks_late == 1 and len(unacked) == 1
    async with sessions() as session:
        assert await pending_count(session, booking_store.outbox) == 1

    # the producer gives up on the record (its request timeout); Kafka is back
    acking = True
    unacked[0].set_exception(TimeoutError("no ack within the request timeout"))

    async def nothing_pending() -> bool:
        async with sessions() as session:
            return await pending_count(session, booking_store.outbox) == 0

    await eventually(nothing_pending, what="the relay to send the row again")
    await relay.stop()
    assert relay.failures == 1
    assert [json.loads(p)["data"]["carrier_reference"] for p in published] == ["a", "b"]


def _relay_acking_all(engine, **options) -> tuple[OutboxRelay, list[list[bytes]]]:
    """A relay whose broker acks every record at once, and the payloads of each pass that
    published any. Its own loop is woken by nothing (no LISTEN, an hour's poll): only
    publish_now publishes."""
    passes: list[list[bytes]] = []

    async def publish_batch(records):
        passes.append([payload for _topic, _key, payload, _headers in records])
        return [None] * len(records)

    relay = OutboxRelay(
        service="booking",
        engine=engine,
        outbox=booking_store.outbox,
        publish_batch=publish_batch,
        poll_interval=3600,
        **options,
    )

    async def not_listening() -> bool:
        return False

    relay.listener.keep_listening = not_listening  # type: ignore[method-assign]
    return relay, passes


async def test_publish_now_returns_once_acked_while_marking_the_rows_waits_its_turn(
    booking_engine,
) -> None:
    """A consumer's offset waits for its events' acks, not for the rows to be marked sent:
    while another transaction holds what the mark needs (SQLite's writer, a PostgreSQL
    row lock), publish_now returns on the acks, and the row is marked once it is free."""
    sessions = make_sessionmaker(booking_engine)
    relay, passes = _relay_acking_all(booking_engine)
    relay.start()
    await eventually(lambda: relay.passes >= 1, what="the relay's first pass")
    async with sessions() as session, session.begin():
        await enqueue(session, booking_store.outbox, _event("a", "h"), topic="t", key="h")
    o = booking_store.outbox
    async with writing(booking_engine), sessions() as holder, holder.begin():
        # the next batch's transaction, say: it holds the row (and SQLite's writer)
        await holder.execute(select(o.c.id).with_for_update())
        await relay.publish_now(timeout=10)
        assert relay.acks_late == 0
        assert [[json.loads(p)["data"]["carrier_reference"] for p in ps] for ps in passes] == [
            ["a"]
        ]
        async with sessions() as session:
            assert await pending_count(session, o) == 1  # acked, not marked yet

    async def marked() -> bool:
        async with sessions() as session:
            return await pending_count(session, o) == 0

    await eventually(marked, what="the row marked sent once the holder committed")
    await relay.stop()
    assert len(passes) == 1


async def test_what_a_full_consumer_batch_caused_is_published_in_one_pass(booking_engine) -> None:
    """With the default settings, the events of a consumer's whole batch leave in one relay
    pass (one read, one wait for acks, one mark) before the batch's offsets are committed."""
    settings = Settings()
    sessions = make_sessionmaker(booking_engine)
    relay, passes = _relay_acking_all(booking_engine, batch_size=settings.outbox_batch_size)
    relay.start()
    await eventually(lambda: relay.passes >= 1, what="the relay's first pass")
    batch = settings.kafka_consumer_max_batch
    async with sessions() as session, session.begin():
        for i in range(batch):
            await enqueue(session, booking_store.outbox, _event(f"r{i}", "h"), topic="t", key="h")
    await relay.publish_now(timeout=10)
    assert [len(records) for records in passes] == [batch]
    await relay.stop()


class _Record:
    def __init__(self, offset: int, event) -> None:
        self.topic, self.partition, self.offset = "microhub.booking.commands.v1", 0, offset
        self.value = event.model_dump_json().encode()
        self.key, self.timestamp = b"h", None


async def test_a_batch_with_a_failing_record_keeps_the_others(booking_engine, monkeypatch) -> None:
    """Records fetched together share a transaction; when one fails for good, the batch
    is redone record by record: the others are applied once, the bad one dead-lettered."""
    from faststream.kafka import KafkaBroker

    from services.runtime.consumer import EventConsumer

    sessions = make_sessionmaker(booking_engine)
    applied: list[str] = []

    async def handler(uow, delivery) -> None:
        ref = delivery.event.data.carrier_reference
        if ref == "bad":
            raise ValueError("a bug that fails every time")
        applied.append(ref)

    events = [_event(ref, "h") for ref in ("one", "bad", "two")]
    consumer = EventConsumer(
        KafkaBroker(),
        name="test",
        topic="microhub.booking.commands.v1",
        config={"group.id": "test"},  # never started: the batch is handed over directly
        allowed_types={events[0].type},
        units=UnitsOfWork(sessions, source="test", outbox=booking_store.outbox, topic=str),
        inbox=booking_store.inbox,
        handler=handler,
    )
    dead: list[int] = []

    async def dead_letter(record, *, reason, error) -> None:
        dead.append(record.offset)

    monkeypatch.setattr(consumer.dead_letters, "send", dead_letter)
    await consumer.process_batch([_Record(i, e) for i, e in enumerate(events)])
    assert dead == [1]
    # "one" ran in the failed batch too, but that transaction was rolled back
    async with sessions() as session:
        claimed = (
            (
                await session.execute(
                    select(booking_store.inbox.c.event_id).where(
                        booking_store.inbox.c.consumer == "test"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert sorted(claimed) == sorted([events[0].id, events[2].id])
    assert consumer.stats.processed == 2
    assert applied[-2:] == ["one", "two"]
