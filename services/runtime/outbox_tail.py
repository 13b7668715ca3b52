"""What a service's outbox relay already published: read back from Kafka and marked sent, for
a relay that takes over from one that died (see ``outbox_relay.OutboxRelay.reconcile``).

Records are found by the headers the relay puts on every record (the service and the
outbox row id). Reading starts at the oldest pending row's creation time, less a margin
for clocks of other hosts (a row is created before it is published, and the record's
timestamp is taken when it is sent), and stops at the end offsets seen at the start:
what is read is bounded by what was published since the oldest pending row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.runtime.db import rowcount, writing
from services.runtime.kafka_security import aiokafka_security_kwargs
from services.runtime.outbox import OUTBOX_HEADER, OUTBOX_ID_HEADER, FindPublished
from services.runtime.settings import Settings

CLOCK_MARGIN = timedelta(minutes=5)


async def published_outbox_ids(
    bootstrap: list[str], settings: Settings, service: str, since: dict[str, datetime]
) -> set[int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        client_id=f"{settings.kafka_client_id}-{service}-outbox-reconcile",
        **aiokafka_security_kwargs(settings),
    )
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id=f"{settings.kafka_client_id}-{service}-outbox-reconcile",
        **aiokafka_security_kwargs(settings),
    )
    await consumer.start()
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics(sorted(since))}
        starts: dict[TopicPartition, int] = {}
        for topic, oldest in since.items():
            known = described.get(topic)
            if known is None or known.get("error_code"):
                continue  # never created: nothing was published to it
            partitions = [TopicPartition(topic, p["partition"]) for p in known["partitions"]]
            at = int((oldest - CLOCK_MARGIN).timestamp() * 1000)
            found = await consumer.offsets_for_times({tp: at for tp in partitions})
            for tp, offset in found.items():
                if offset is not None:  # None: nothing was written since then
                    starts[tp] = offset.offset
        if not starts:
            return set()
        ends = await consumer.end_offsets(list(starts))
        todo = {tp for tp in starts if ends[tp] > starts[tp]}
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, starts[tp])
        ids: set[int] = set()
        wanted = service.encode()
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    headers = dict(record.headers or ())
                    if headers.get(OUTBOX_HEADER) == wanted and OUTBOX_ID_HEADER in headers:
                        ids.add(int(headers[OUTBOX_ID_HEADER]))
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
        return ids
    finally:
        await admin.close()
        await consumer.stop()


async def mark_already_published(
    engine: AsyncEngine, outbox: Table, find_published: FindPublished
) -> int:
    """Mark the pending rows that ``find_published`` finds in Kafka as sent (from the
    oldest pending row's time per topic); returns how many."""
    o = outbox
    async with AsyncSession(engine) as session:
        oldest = dict(
            (
                await session.execute(
                    select(o.c.topic, func.min(o.c.created_at))
                    .where(o.c.sent_at.is_(None))
                    .group_by(o.c.topic)
                )
            ).all()
        )
    if not oldest:
        return 0
    found = await find_published(oldest)
    if not found:
        return 0
    async with writing(engine), AsyncSession(engine) as session, session.begin():
        marked = 0
        ids = sorted(found)
        for start in range(0, len(ids), 1000):  # bounded IN lists
            result = await session.execute(
                update(o)
                .where(o.c.id.in_(ids[start : start + 1000]), o.c.sent_at.is_(None))
                .values(sent_at=datetime.now(UTC))
            )
            marked += rowcount(result)
    return marked
