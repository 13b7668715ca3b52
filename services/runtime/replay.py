"""Rebuild a service's state from its input topics: every record from the beginning up to
the end offsets seen when the replay starts, through the very apply path of the live
consumers (decode, inbox, handler, one unit of work per batch). Poison records are
counted and skipped: the live consumer dead-lettered them already.

For projections (reporting): a service that decides (booking) must never be replayed
into a database that already answered, and :func:`replay` refuses a database that holds
any inbox row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import func, select

from services.runtime.consumer import DeadLetters, RecordApplier
from services.runtime.kafka_security import aiokafka_security_kwargs

if TYPE_CHECKING:
    from services.runtime.service import Service


@dataclass
class ReplayStats:
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    skipped_poison: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)


async def replay(
    service: Service,
    *,
    progress: Callable[[int, int], None] | None = None,
    idle_timeout: float = 30.0,
    batch: int = 500,
) -> ReplayStats:
    """Re-read every topic ``service`` consumes into its (fresh) database; returns when
    caught up with the end offsets seen at the start."""
    await service.migrate()
    async with service.sessions() as session:
        already = (
            await session.execute(select(func.count()).select_from(service.inbox))
        ).scalar_one()
    if already:
        raise ValueError(
            f"{service.engine.url.render_as_string()} already holds state "
            f"({already} events applied): a rebuild needs a fresh database"
        )
    settings = service.settings
    handlers = service.make_handlers()
    appliers = {
        settings.topic(c.topic.name): RecordApplier(
            name=c.consumer,
            allowed_types=c.accepts,
            units=service.units,
            inbox=service.inbox,
            handler=c.bind(handlers),
            batch_handler=c.bind_batch(handlers),
            dead_letters=DeadLetters(None, consumer=c.consumer),  # count only
        )
        for c in service.spec.consumes
    }
    consumer = AIOKafkaConsumer(
        bootstrap_servers=service.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=f"{settings.kafka_client_id}-{service.name}-rebuild",
        **aiokafka_security_kwargs(settings),
    )
    await consumer.start()
    stats = ReplayStats()
    try:
        partitions = await _partitions(service, sorted(appliers))
        if not partitions:
            return stats
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        total = sum(ends[tp] - starts[tp] for tp in partitions)
        pending = {tp for tp in partitions if ends[tp] > starts[tp]}
        loop = asyncio.get_running_loop()
        last_progress = loop.time()
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=500, max_records=batch)
            if fetched:
                last_progress = loop.time()
            elif loop.time() - last_progress > idle_timeout:
                raise TimeoutError(f"replay stalled with {len(pending)} partitions behind")
            for tp, records in fetched.items():
                mine = [r for r in records if r.offset < ends[tp]]
                applier = appliers[tp.topic]
                await applier.process_batch(mine)
                stats.records += len(mine)
                stats.per_topic[tp.topic] = stats.per_topic.get(tp.topic, 0) + len(mine)
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
            if progress is not None:
                progress(stats.records, total)
    finally:
        await consumer.stop()
    for applier in appliers.values():
        stats.applied += applier.stats.processed
        stats.duplicates += applier.stats.duplicates
        stats.skipped_poison += applier.dead_letters.count
    return stats


async def _partitions(service: Service, topics: list[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=service.bootstrap, **aiokafka_security_kwargs(service.settings)
    )
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return sorted(
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if not t.get("error_code")
        for p in t["partitions"]
    )
